/**
 * HTTP side of subscriptions: POST/GET /webhooks, GET/PATCH/DELETE /webhooks/:id,
 * GET /webhooks/:id/secret, POST /webhooks/:id/rotate-secret, POST /webhooks/:id/recover.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import type { RouteDeps } from '../http/deps.js';
import { callerOf } from '../http/request-context.js';
import { bodyValidator, queryValidator, uuidParam } from '../http/validation.js';
import {
  createWebhookSchema,
  listWebhooksQuerySchema,
  recoverSchema,
  rotateSecretSchema,
  type RecoverBody,
  updateWebhookSchema,
  type CreateWebhookBody,
  type ListWebhooksQuery,
  type RotateSecretBody,
  type UpdateWebhookBody,
  filterTestSchema,
  type FilterTestBody,
} from './webhook-schemas.js';
import { tenantQuerySchema, type TenantQuery } from '../http/common-schemas.js';
import { createWebhookService } from './webhook-service.js';
import { recoverWebhook } from './webhook-recovery.js';

const validateCreate = bodyValidator<CreateWebhookBody>(createWebhookSchema);
const validateFilterTest = bodyValidator<FilterTestBody>(filterTestSchema);
const validateUpdate = bodyValidator<UpdateWebhookBody>(updateWebhookSchema, {
  '/secret': 'cannot be changed with PATCH; use POST /webhooks/:id/rotate-secret',
});
const validateRotate = bodyValidator<RotateSecretBody>(rotateSecretSchema);
const validateListQuery = queryValidator<ListWebhooksQuery>(listWebhooksQuerySchema);
const validateTenantQuery = queryValidator<TenantQuery>(tenantQuerySchema);
const validateRecover = bodyValidator<RecoverBody>(recoverSchema);

const webhookId = (ctx: Context): string => uuidParam(ctx.params.id, 'Webhook');
/** A copy: the query validator fills in defaults, and Koa's query object is shared. */
const queryOf = (ctx: Context): Record<string, unknown> => ({ ...ctx.query });

export function webhookRoutes(deps: RouteDeps): Router {
  const service = createWebhookService(deps);
  const router = new Router();

  router.post('/webhooks', async (ctx) => {
    ctx.status = 201;
    ctx.body = await service.create(callerOf(ctx), validateCreate(ctx.request.body));
  });

  router.get('/webhooks', async (ctx) => {
    ctx.body = await service.list(callerOf(ctx), validateListQuery(queryOf(ctx)));
  });

  router.get('/webhooks/:id', async (ctx) => {
    const id = webhookId(ctx);
    ctx.body = await service.get(callerOf(ctx), id, validateTenantQuery(queryOf(ctx)).tenant_id);
  });

  router.get('/webhooks/:id/secret', async (ctx) => {
    const id = webhookId(ctx);
    ctx.body = await service.getSecret(callerOf(ctx), id, validateTenantQuery(queryOf(ctx)).tenant_id);
  });

  router.patch('/webhooks/:id', async (ctx) => {
    const id = webhookId(ctx);
    ctx.body = await service.update(callerOf(ctx), id, validateUpdate(ctx.request.body));
  });

  router.delete('/webhooks/:id', async (ctx) => {
    const id = webhookId(ctx);
    await service.remove(callerOf(ctx), id, validateTenantQuery(queryOf(ctx)).tenant_id);
    ctx.status = 204;
  });

  router.post('/webhooks/:id/rotate-secret', async (ctx) => {
    const id = webhookId(ctx);
    ctx.body = await service.rotateSecret(callerOf(ctx), id, validateRotate(ctx.request.body ?? {}));
  });

  // Recovery (sending failed and dead deliveries again) lives with the DLQ.
  router.post('/webhooks/:id/filter-test', async (ctx) => {
    const id = webhookId(ctx);
    const { tenant_id } = validateTenantQuery(queryOf(ctx));
    ctx.body = await service.testFilter(callerOf(ctx), id, validateFilterTest(ctx.request.body), tenant_id);
  });

  router.post('/webhooks/:id/recover', async (ctx) => {
    const id = webhookId(ctx);
    ctx.body = await recoverWebhook(deps, callerOf(ctx), id, validateRecover(ctx.request.body));
  });

  return router;
}
