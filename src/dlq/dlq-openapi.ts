/** The dead-letter queue API. Feeds docs/openapi.json. */
import { type Operation, type JsonSchema } from '../http/operation.js';
import { requeuedDeliverySchema } from '../delivery/delivery-schemas.js';
import {
  bulkRetryAnswerSchema,
  bulkRetrySchema,
  deadLetterSchema,
  listDlqQuerySchema,
} from './dlq-schemas.js';
import { listAnswerSchema, tenantBodySchema, tenantQuerySchema } from '../http/common-schemas.js';

export const dlqOperations: Operation[] = [
  {
    method: 'get',
    path: '/dlq',
    summary: 'List dead letters, newest first',
    description: 'An admin token without tenant_id lists every tenant.',
    query: listDlqQuerySchema,
    responses: { 200: { description: 'A page.', schema: listAnswerSchema(deadLetterSchema) as JsonSchema } },
    errors: [400, 403],
  },
  {
    method: 'post',
    path: '/dlq/{id}/retry',
    idOf: 'Delivery',
    summary: 'Retry one dead letter',
    description:
      'The entry leaves the DLQ and the delivery starts a new series (same `webhook-id`), in one transaction. 409 when its webhook is disabled.',
    body: tenantBodySchema,
    bodyOptional: true,
    responses: { 202: { description: 'Queued for attempt 1.', schema: requeuedDeliverySchema } },
    errors: [400, 403, 404, 409, 413, 415],
  },
  {
    method: 'post',
    path: '/dlq/retry',
    summary: 'Retry every matching dead letter',
    description:
      'Entries dead-lettered before the call, oldest first, in batches of 500 per transaction, queued behind fresh traffic. Entries of disabled webhooks stay. Answers when every batch has committed.',
    body: bulkRetrySchema,
    bodyOptional: true,
    responses: {
      200: { description: 'How many were queued again, and how many stayed.', schema: bulkRetryAnswerSchema },
    },
    errors: [400, 403, 413, 415],
  },
  {
    method: 'delete',
    path: '/dlq/{id}',
    idOf: 'Delivery',
    summary: 'Delete a dead letter',
    description:
      'The delivery and its attempts stay (status `dead`); it no longer counts against max_dlq_size.',
    query: tenantQuerySchema,
    responses: { 204: { description: 'Deleted.' } },
    errors: [400, 403, 404],
  },
];
