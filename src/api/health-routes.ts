import Router from '@koa/router';
import { sql } from 'kysely';
import type { RouteDeps } from '../http/deps.js';

const VERSION = process.env.npm_package_version ?? '0.1.0';

/** GET /health (200 when the database answers, else 503) and GET /metrics; no token needed. */
export function healthRoutes(deps: RouteDeps): Router {
  const router = new Router();
  router.get('/health', async (ctx) => {
    try {
      await Promise.race([
        sql`select 1`.execute(deps.db),
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error('database check timed out')), 3000).unref(),
        ),
      ]);
      ctx.body = { status: 'ok', database: 'ok', role: deps.config.role, version: VERSION };
    } catch {
      ctx.status = 503;
      ctx.body = {
        status: 'unavailable',
        database: 'unreachable',
        error: { code: 'service_unavailable', message: 'The database is not reachable.' },
      };
    }
  });
  router.get('/metrics', async (ctx) => {
    ctx.type = deps.metrics.registry.contentType;
    ctx.body = await deps.metrics.registry.metrics();
  });
  return router;
}
