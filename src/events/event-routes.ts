import Router from '@koa/router';
import type { ApiDeps } from '../api/deps.js';

export function eventRoutes(_deps: ApiDeps): Router {
  const router = new Router();
  return router;
}
