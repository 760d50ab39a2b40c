/**
 * HTTP side of the event type catalog: PUT/GET/DELETE /event-types/:name, GET /event-types, and
 * PUT /tenants/:tenant_id/settings (unknown_event_types).
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { tenantQuerySchema, type TenantQuery } from '../http/common-schemas.js';
import type { RouteDeps } from '../http/deps.js';
import { callerOf } from '../http/request-context.js';
import { bodyValidator, queryValidator } from '../http/validation.js';
import { AppError, notFound } from '../errors.js';
import { createEventTypeService } from './event-type-service.js';
import {
  putEventTypeSchema,
  tenantSettingsSchema,
  type PutEventTypeBody,
  type TenantSettingsBody,
} from './event-type-schemas.js';
import { EVENT_TYPE_PATTERN } from '../webhooks/webhook-schemas.js';

const validatePut = bodyValidator<PutEventTypeBody>(putEventTypeSchema);
const validateSettings = bodyValidator<TenantSettingsBody>(tenantSettingsSchema);
const validateTenantQuery = queryValidator<TenantQuery>(tenantQuerySchema);
const NAME = new RegExp(EVENT_TYPE_PATTERN);

/** The `:name` of the path: an event type, or a 404 (no such entry can exist). */
function nameOf(ctx: Context): string {
  const name = ctx.params.name;
  if (!name || !NAME.test(name)) throw notFound('Event type');
  return name;
}

export function eventTypeRoutes(deps: RouteDeps): Router {
  const service = createEventTypeService(deps);
  const router = new Router();

  router.get('/event-types', async (ctx) => {
    ctx.body = await service.list(callerOf(ctx), validateTenantQuery({ ...ctx.query }).tenant_id);
  });

  router.put('/event-types/:name', async (ctx) => {
    const name = nameOf(ctx);
    const { view, created } = await service.put(callerOf(ctx), name, validatePut(ctx.request.body ?? {}));
    ctx.status = created ? 201 : 200;
    ctx.body = view;
  });

  router.get('/event-types/:name', async (ctx) => {
    ctx.body = await service.get(callerOf(ctx), nameOf(ctx), validateTenantQuery({ ...ctx.query }).tenant_id);
  });

  router.delete('/event-types/:name', async (ctx) => {
    await service.remove(callerOf(ctx), nameOf(ctx), validateTenantQuery({ ...ctx.query }).tenant_id);
    ctx.status = 204;
  });

  router.put('/tenants/:tenant_id/settings', async (ctx) => {
    const body = validateSettings(ctx.request.body ?? {});
    const tenantId = ctx.params.tenant_id;
    if (!tenantId) throw new AppError('not_found', 'Tenant not found.');
    ctx.body = await service.setUnknownEventTypes(callerOf(ctx), tenantId, body.unknown_event_types);
  });

  return router;
}
