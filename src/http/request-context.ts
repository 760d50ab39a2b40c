import { randomUUID } from 'node:crypto';
import type { Context, Middleware } from 'koa';
import type { Caller, Principal } from '../tenancy/caller.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

/** The authenticated caller; only inside routes mounted behind `authenticate`. */
export function principalOf(ctx: Context): Principal {
  return ctx.state.principal as Principal;
}

export function requestIdOf(ctx: Context): string {
  return ctx.state.requestId as string;
}

/** The caller as services take it: who, and through which request. */
export function callerOf(ctx: Context): Caller {
  return { principal: principalOf(ctx), requestId: requestIdOf(ctx) };
}

const REQUEST_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

/**
 * The route template the request matched (`/webhooks/:id`), for metrics and logs; never a path
 * with ids in it, nor the pattern of a router-wide middleware (`(?:\/|$)`, which is what the
 * router reports for a request refused by authentication before any route).
 */
function routeLabel(ctx: Context): string {
  const matched = (ctx as Context & { _matchedRoute?: unknown })._matchedRoute;
  if (typeof matched === 'string' && matched.startsWith('/')) return matched;
  return ctx.status === 401 ? 'unauthenticated' : 'unmatched';
}

/**
 * Gives each request an id (the caller's X-Request-Id when it is sane), echoes it back, and
 * writes one log line and one histogram sample per request.
 */
export function requestContext(logger: Logger, metrics: Metrics): Middleware {
  return async (ctx, next) => {
    const given = ctx.get('x-request-id');
    const requestId = REQUEST_ID.test(given) ? given : randomUUID();
    ctx.state.requestId = requestId;
    ctx.set('X-Request-Id', requestId);
    const started = process.hrtime.bigint();
    try {
      await next();
    } finally {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = routeLabel(ctx);
      metrics.httpDuration.observe(
        { method: ctx.method, route: String(route), status_class: `${Math.floor(ctx.status / 100)}xx` },
        seconds,
      );
      if (ctx.path !== '/metrics' && ctx.path !== '/health') {
        logger.info('request', {
          request_id: requestId,
          method: ctx.method,
          path: ctx.path,
          route: String(route),
          status: ctx.status,
          duration_ms: Math.round(seconds * 1000),
        });
      }
    }
  };
}
