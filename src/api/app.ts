/**
 * The Koa app: request ids and logs, the JSON error shape, body parsing, then the routes.
 * No listen here: main.ts (and the tests) decide where it listens.
 */
import Koa from 'koa';
import Router from '@koa/router';
import { authenticate } from './auth.js';
import type { ApiDeps } from './deps.js';
import { errorMiddleware } from './error-middleware.js';
import { healthRoutes } from './health-routes.js';
import { jsonBody } from './json-body.js';
import { requestContext } from './request-context.js';
import { webhookRoutes } from '../webhooks/webhook-routes.js';
import { eventRoutes } from '../events/event-routes.js';
import { deliveryRoutes } from '../delivery/delivery-routes.js';
import { dlqRoutes } from '../dlq/dlq-routes.js';
import { quotaRoutes } from '../tenancy/quota-routes.js';
import { auditRoutes } from '../audit/audit-routes.js';

export function createApp(deps: ApiDeps): Koa {
  const app = new Koa();
  app.proxy = false;
  // Koa's own error printing would duplicate ours; errors are handled by errorMiddleware.
  app.silent = true;
  app.on('error', () => undefined);

  app.use(requestContext(deps.logger, deps.metrics));
  app.use(errorMiddleware(deps.logger));

  const open = healthRoutes(deps);
  app.use(open.routes());

  const auth = authenticate(deps.jwtSecret);
  const authed = new Router();
  authed.use(auth);
  authed.use(jsonBody(deps.config.maxPayloadBytes));
  for (const router of [
    webhookRoutes(deps),
    eventRoutes(deps),
    deliveryRoutes(deps),
    dlqRoutes(deps),
    quotaRoutes(deps),
    auditRoutes(deps),
  ]) {
    authed.use(router.routes(), router.allowedMethods());
  }
  app.use(authed.routes());
  // Anything that matched no route: 401 first if there is no token (nothing is disclosed), else 404.
  app.use(auth);
  return app;
}
