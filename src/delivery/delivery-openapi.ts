/** The deliveries API. Feeds docs/openapi.json. */
import { type Operation } from '../http/operation.js';
import { deliveryDetailSchema, requeuedDeliverySchema } from './delivery-schemas.js';
import { tenantBodySchema, tenantQuerySchema } from '../http/common-schemas.js';

export const deliveryOperations: Operation[] = [
  {
    method: 'get',
    path: '/deliveries/{id}',
    summary: 'Read a delivery and every attempt, in time order',
    query: tenantQuerySchema,
    responses: { 200: { description: 'The delivery.', schema: deliveryDetailSchema } },
    errors: [400, 403, 404],
  },
  {
    method: 'post',
    path: '/deliveries/{id}/retry',
    summary: 'Send a delivery again, in a new series of attempts',
    description:
      'Any delivery that is not queued or in flight: succeeded (a manual resend), failed (the scheduled retry is replaced), dead (it also leaves the DLQ) or paused. 409 when it is `pending`, or when its webhook is disabled. Same `webhook-id`; attempt numbers restart at 1.',
    body: tenantBodySchema,
    bodyOptional: true,
    responses: { 202: { description: 'Queued for attempt 1.', schema: requeuedDeliverySchema } },
    errors: [400, 403, 404, 409, 413, 415],
  },
];
