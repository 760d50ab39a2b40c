/**
 * HTTP side of the dead-letter queue: GET /dlq, POST /dlq/:id/retry, POST /dlq/retry,
 * DELETE /dlq/:id. The `:id` is the delivery's id (`delivery_id` in the entry).
 */
import Router from '@koa/router';
import type { RouteDeps } from '../http/deps.js';
import { callerOf } from '../http/request-context.js';
import { bodyValidator, queryValidator, uuidParam } from '../http/validation.js';
import {
  tenantQuerySchema,
  type TenantQuery,
  tenantBodySchema,
  type TenantBody,
} from '../http/common-schemas.js';
import { bulkRetrySchema, listDlqQuerySchema, type BulkRetryBody, type ListDlqQuery } from './dlq-schemas.js';
import { createDlqService } from './dlq-service.js';

const validateListQuery = queryValidator<ListDlqQuery>(listDlqQuerySchema);
const validateTenantQuery = queryValidator<TenantQuery>(tenantQuerySchema);
const validateBulkRetry = bodyValidator<BulkRetryBody>(bulkRetrySchema);
const validateTenantBody = bodyValidator<TenantBody>(tenantBodySchema);

export function dlqRoutes(deps: RouteDeps): Router {
  const dlq = createDlqService(deps);
  const router = new Router();

  router.get('/dlq', async (ctx) => {
    ctx.body = await dlq.list(callerOf(ctx), validateListQuery({ ...ctx.query }));
  });

  router.post('/dlq/retry', async (ctx) => {
    ctx.body = await dlq.retryAll(callerOf(ctx), validateBulkRetry(ctx.request.body ?? {}));
  });

  router.post('/dlq/:id/retry', async (ctx) => {
    const id = uuidParam(ctx.params.id, 'Dead-letter entry');
    const body = validateTenantBody(ctx.request.body ?? {});
    ctx.status = 202;
    ctx.body = await dlq.retry(callerOf(ctx), id, body.tenant_id);
  });

  router.delete('/dlq/:id', async (ctx) => {
    const id = uuidParam(ctx.params.id, 'Dead-letter entry');
    await dlq.remove(callerOf(ctx), id, validateTenantQuery({ ...ctx.query }).tenant_id);
    ctx.status = 204;
  });

  return router;
}
