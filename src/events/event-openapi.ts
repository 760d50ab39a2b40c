/** The events API. Feeds docs/openapi.json. */
import { type Operation, type JsonSchema } from '../http/operation.js';
import {
  MAX_IDEMPOTENCY_KEY_LENGTH,
  createEventSchema,
  eventAcceptedSchema,
  eventDetailSchema,
  eventSummarySchema,
  listEventsQuerySchema,
} from './event-schemas.js';
import { listAnswerSchema, tenantQuerySchema } from '../http/common-schemas.js';

export const eventOperations: Operation[] = [
  {
    method: 'post',
    path: '/events',
    summary: 'Accept an event',
    description:
      'The event, one delivery per matching enabled webhook and their jobs are committed before the 202.',
    body: createEventSchema,
    headers: [
      {
        name: 'Idempotency-Key',
        description:
          'The same key from the same tenant within 24 h answers with the first answer (202, header Idempotent-Replayed: true) and creates nothing.',
        schema: { type: 'string', minLength: 1, maxLength: MAX_IDEMPOTENCY_KEY_LENGTH },
      },
    ],
    responses: { 202: { description: 'Accepted and committed.', schema: eventAcceptedSchema } },
    errors: [400, 403, 413, 415, 429, 503],
  },
  {
    method: 'get',
    path: '/events',
    summary: 'List events, newest first (without payloads)',
    query: listEventsQuerySchema,
    responses: {
      200: { description: 'A page.', schema: listAnswerSchema(eventSummarySchema) as JsonSchema },
    },
    errors: [400, 403],
  },
  {
    method: 'get',
    path: '/events/{id}',
    summary: 'Read an event, its payload and its deliveries',
    query: tenantQuerySchema,
    responses: { 200: { description: 'The event.', schema: eventDetailSchema } },
    errors: [400, 403, 404],
  },
];
