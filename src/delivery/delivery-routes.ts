/** HTTP side of deliveries: GET /deliveries/:id (the delivery and every attempt, in time order). */
import Router from '@koa/router';
import type { ApiDeps } from '../api/deps.js';
import { principalOf } from '../api/request-context.js';
import { queryValidator, uuidParam } from '../api/validation.js';
import { createEventService } from '../events/event-service.js';
import { tenantQuerySchema, type TenantQuery } from '../webhooks/webhook-schemas.js';

const validateTenantQuery = queryValidator<TenantQuery>(tenantQuerySchema);

export function deliveryRoutes(deps: ApiDeps): Router {
  const events = createEventService(deps);
  const router = new Router();

  router.get('/deliveries/:id', async (ctx) => {
    const id = uuidParam(ctx.params.id, 'Delivery');
    ctx.body = await events.getDelivery(
      principalOf(ctx),
      id,
      validateTenantQuery({ ...ctx.query }).tenant_id,
    );
  });

  // POST /deliveries/:id/retry is added with the delivery engine.

  return router;
}
