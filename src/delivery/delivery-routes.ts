/**
 * HTTP side of deliveries: GET /deliveries/:id (the delivery and every attempt, in time order)
 * and POST /deliveries/:id/retry (send it again in a new series, when it is not in flight).
 */
import Router from '@koa/router';
import {
  tenantBodySchema,
  tenantQuerySchema,
  type TenantBody,
  type TenantQuery,
} from '../http/common-schemas.js';
import type { RouteDeps } from '../http/deps.js';
import { callerOf, principalOf } from '../http/request-context.js';
import { bodyValidator, queryValidator, uuidParam } from '../http/validation.js';
import { createDeliveryService } from './delivery-service.js';

const validateTenantQuery = queryValidator<TenantQuery>(tenantQuerySchema);
const validateTenantBody = bodyValidator<TenantBody>(tenantBodySchema);

export function deliveryRoutes(deps: RouteDeps): Router {
  const deliveries = createDeliveryService(deps);
  const router = new Router();

  router.get('/deliveries/:id', async (ctx) => {
    const id = uuidParam(ctx.params.id, 'Delivery');
    ctx.body = await deliveries.get(principalOf(ctx), id, validateTenantQuery({ ...ctx.query }).tenant_id);
  });

  router.post('/deliveries/:id/retry', async (ctx) => {
    const id = uuidParam(ctx.params.id, 'Delivery');
    const body = validateTenantBody(ctx.request.body ?? {});
    ctx.status = 202;
    ctx.body = await deliveries.resend(callerOf(ctx), id, body.tenant_id);
  });

  return router;
}
