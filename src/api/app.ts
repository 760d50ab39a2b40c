/**
 * The Koa app: request ids and logs, the JSON error shape, body parsing, then the routes.
 * No listen here: main.ts (and the tests) decide where it listens.
 */
import Koa from 'koa';
import Router from '@koa/router';
import { authenticate } from '../http/auth.js';
import { errorMiddleware } from '../http/error-middleware.js';
import { healthRoutes } from './health-routes.js';
import { discardUnusedBody, jsonBody } from '../http/json-body.js';
import { requestContext } from '../http/request-context.js';
import { features, type AppDeps } from './features.js';
import { portalRoutes } from '../portal/portal-routes.js';

export function createApp(deps: AppDeps): Koa {
  const app = new Koa();
  app.proxy = false;
  // Koa's own error printing would duplicate ours; errors are handled by errorMiddleware.
  app.silent = true;
  app.on('error', () => undefined);

  app.use(requestContext(deps.logger, deps.metrics));
  app.use(errorMiddleware(deps.logger));
  app.use(discardUnusedBody(deps.config.maxPayloadBytes));

  const open = healthRoutes(deps);
  app.use(open.routes());
  // The portal's pages: a cookie session of their own, not the bearer token.
  // POST /portal/sessions is an API route (bearer token), below with the features.
  const portal = portalRoutes(deps).routes() as Koa.Middleware;
  app.use((ctx, next) =>
    ctx.path.startsWith('/portal') && ctx.path !== '/portal/sessions' ? portal(ctx, next) : next(),
  );

  const revocations = deps.tokenRevocations;
  const auth = authenticate(deps.jwtSecrets, revocations ? { tokensValidAfter: revocations.validAfter } : {});
  const authed = new Router();
  authed.use(auth);
  authed.use(jsonBody(deps.config.maxPayloadBytes));
  // No allowedMethods(): a path served with another method falls through to the 404 below
  // either way, and each router's would run on every request.
  for (const feature of features) authed.use(feature.routes(deps).routes());
  app.use(authed.routes());
  // Anything that matched no route: 401 first if there is no token (nothing is disclosed), else 404.
  app.use(auth);
  return app;
}
