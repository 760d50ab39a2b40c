import Router from '@koa/router';
import type { ApiDeps } from '../api/deps.js';

export function webhookRoutes(_deps: ApiDeps): Router {
  const router = new Router();
  return router;
}
