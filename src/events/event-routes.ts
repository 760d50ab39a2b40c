/** HTTP side of events: POST /events (202 after commit), GET /events, GET /events/:id. */
import Router from '@koa/router';
import type { Context } from 'koa';
import { actingTenant } from '../tenancy/caller.js';
import type { DirectDispatch } from '../delivery/deliver-batch.js';
import { createEventCatalog } from '../event-types/event-type-catalog.js';
import { isOperationalType, OPERATIONAL_PREFIX } from './operational-events.js';
import type { RouteDeps } from '../http/deps.js';
import { principalOf } from '../http/request-context.js';
import { bodyValidator, queryValidator, uuidParam } from '../http/validation.js';
import { AppError } from '../errors.js';
import { tenantQuerySchema, type TenantQuery } from '../http/common-schemas.js';
import {
  createEventSchema,
  listEventsQuerySchema,
  MAX_IDEMPOTENCY_KEY_LENGTH,
  MAX_PAYLOAD_DEPTH,
  type CreateEventBody,
  type ListEventsQuery,
} from './event-schemas.js';
import { createEventService } from './event-service.js';
import { createIngestionService, rateLimitHeaders, type IngestionService } from './ingestion-service.js';
import { nestsDeeperThan } from './payload-depth.js';

const validateCreate = bodyValidator<CreateEventBody>(createEventSchema);
const validateListQuery = queryValidator<ListEventsQuery>(listEventsQuerySchema);
const validateTenantQuery = queryValidator<TenantQuery>(tenantQuerySchema);

const queryOf = (ctx: Context): Record<string, unknown> => ({ ...ctx.query });

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The Idempotency-Key header as the client wrote it: its bytes read as UTF-8 (Node hands header
 * values over one byte per character), 1 to MAX_IDEMPOTENCY_KEY_LENGTH characters.
 */
function idempotencyKeyOf(ctx: Context): string | undefined {
  const raw = ctx.headers['idempotency-key'];
  if (raw === undefined) return undefined;
  const bytes = Buffer.from(Array.isArray(raw) ? raw.join(', ') : raw, 'latin1');
  let key: string;
  try {
    key = UTF8.decode(bytes);
  } catch {
    throw invalidKey('must be UTF-8 text');
  }
  const characters = [...key].length;
  if (characters === 0 || characters > MAX_IDEMPOTENCY_KEY_LENGTH) {
    throw invalidKey(`must be 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} characters long`);
  }
  return key;
}

const invalidKey = (message: string) =>
  new AppError('invalid_request', 'The Idempotency-Key header is invalid.', {
    details: [{ field: 'Idempotency-Key', message }],
  });

export function eventRoutes(
  deps: RouteDeps & { dispatch?: DirectDispatch },
  options: { ingestion?: IngestionService } = {},
): Router {
  const ingestion = options.ingestion ?? createIngestionService(deps);
  const events = createEventService(deps);
  const catalog = createEventCatalog(deps);
  const router = new Router();

  router.post('/events', async (ctx) => {
    const body = validateCreate(ctx.request.body);
    const idempotencyKey = idempotencyKeyOf(ctx);
    const tenantId = actingTenant(principalOf(ctx), body.tenant_id);
    if (nestsDeeperThan(body.payload, MAX_PAYLOAD_DEPTH)) {
      throw new AppError('invalid_request', 'The request body is invalid.', {
        details: [{ field: '/payload', message: `must not nest deeper than ${MAX_PAYLOAD_DEPTH} levels` }],
      });
    }
    if (isOperationalType(body.type)) {
      throw new AppError('invalid_request', 'The request body is invalid.', {
        details: [{ field: '/type', message: `types under ${OPERATIONAL_PREFIX} are the service's own` }],
      });
    }
    const { deprecated } = await catalog.check(tenantId, body.type, body.payload);
    if (deprecated) ctx.set('Deprecation', 'true');
    const { replayed, rateLimit, ...answer } = await ingestion.ingest({
      tenantId,
      type: body.type,
      payload: body.payload,
      ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
    });
    if (replayed) ctx.set('Idempotent-Replayed', 'true');
    if (rateLimit) ctx.set(rateLimitHeaders(rateLimit));
    ctx.status = 202;
    ctx.body = answer;
  });

  router.get('/events', async (ctx) => {
    ctx.body = await events.list(principalOf(ctx), validateListQuery(queryOf(ctx)));
  });

  router.get('/events/:id', async (ctx) => {
    const id = uuidParam(ctx.params.id, 'Event');
    ctx.body = await events.get(principalOf(ctx), id, validateTenantQuery(queryOf(ctx)).tenant_id);
  });

  return router;
}
