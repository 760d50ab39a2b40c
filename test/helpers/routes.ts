/** Every authenticated route the app mounts, from the one feature list (src/api/features.ts). */
import { features, type AppDeps, type Feature } from '../../src/api/features.js';

export interface RegisteredRoute {
  feature: string;
  method: string;
  /** Koa's template, e.g. `/webhooks/:id`. */
  path: string;
}

/** The routes of every feature (or those `only` names), HEAD left out. */
export function registeredRoutes(deps: AppDeps, only?: (feature: Feature) => boolean): RegisteredRoute[] {
  return features
    .filter((feature) => only?.(feature) ?? true)
    .flatMap((feature) =>
      feature
        .routes(deps)
        .stack.flatMap((layer) =>
          layer.methods
            .filter((method) => method !== 'HEAD')
            .map((method) => ({ feature: feature.name, method, path: String(layer.path) })),
        ),
    );
}
