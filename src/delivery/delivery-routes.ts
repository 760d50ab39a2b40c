/**
 * HTTP side of deliveries: GET /deliveries/:id (the delivery and every attempt, in time order)
 * and POST /deliveries/:id/retry (send it again in a new series, when it is not in flight).
 */
import Router from '@koa/router';
import type { ApiDeps } from '../api/deps.js';
import { principalOf } from '../api/request-context.js';
import { queryValidator, uuidParam } from '../api/validation.js';
import { callerOf, validateTenantBody } from '../dlq/dlq-routes.js';
import { createDlqService } from '../dlq/dlq-service.js';
import { createEventService } from '../events/event-service.js';
import { tenantQuerySchema, type TenantQuery } from '../webhooks/webhook-schemas.js';

const validateTenantQuery = queryValidator<TenantQuery>(tenantQuerySchema);

export function deliveryRoutes(deps: ApiDeps): Router {
  const events = createEventService(deps);
  const dlq = createDlqService(deps);
  const router = new Router();

  router.get('/deliveries/:id', async (ctx) => {
    const id = uuidParam(ctx.params.id, 'Delivery');
    ctx.body = await events.getDelivery(
      principalOf(ctx),
      id,
      validateTenantQuery({ ...ctx.query }).tenant_id,
    );
  });

  router.post('/deliveries/:id/retry', async (ctx) => {
    const id = uuidParam(ctx.params.id, 'Delivery');
    const body = validateTenantBody(ctx.request.body ?? {});
    ctx.status = 202;
    ctx.body = await dlq.resend(callerOf(ctx), id, body.tenant_id);
  });

  return router;
}
