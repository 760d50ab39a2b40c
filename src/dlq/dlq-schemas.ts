/**
 * Request and answer shapes of the DLQ, resend and recovery API, as JSON schemas: the request
 * schemas are what ajv checks; all of them feed docs/openapi.json.
 */
import { paginationProperties, tenantIdSchema as tenantId, timestamp, uuid } from '../http/common-schemas.js';
import { requeuedCountSchema } from '../delivery/delivery-schemas.js';

const since = {
  ...timestamp,
  description: 'Only entries dead-lettered at or after this time (RFC 3339 with a zone).',
} as const;
const until = { ...timestamp, description: 'Only entries dead-lettered before this time.' } as const;

export interface ListDlqQuery {
  limit: number;
  offset: number;
  webhook_id?: string;
  since?: string;
  until?: string;
  tenant_id?: string;
}

export const listDlqQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...paginationProperties,
    webhook_id: { ...uuid, description: "Only this webhook's entries." },
    since,
    until,
    tenant_id: tenantId,
  },
} as const;

export interface BulkRetryBody {
  webhook_id?: string;
  since?: string;
  until?: string;
  tenant_id?: string;
}

export const bulkRetrySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    webhook_id: { ...uuid, description: "Only this webhook's entries." },
    since,
    until,
    tenant_id: { ...tenantId, description: 'An admin without it retries every tenant’s entries.' },
  },
} as const;

export const deadLetterSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['delivery_id', 'webhook_id', 'event_id', 'tenant_id', 'last_error', 'attempts', 'created_at'],
  properties: {
    delivery_id: { ...uuid, description: 'Also the `webhook-id` header; a retry keeps it.' },
    webhook_id: uuid,
    event_id: uuid,
    tenant_id: { type: 'string' },
    last_error: {
      type: 'string',
      description:
        'The last attempt’s error, e.g. `HTTP 503: Service Unavailable` or `timeout after 10000 ms`.',
    },
    attempts: { type: 'integer', minimum: 0, description: 'Attempts made in the series that ended here.' },
    created_at: { ...timestamp, description: 'When the delivery was dead-lettered.' },
  },
} as const;

/** The answer of a bulk DLQ retry, given once every batch has committed. */
export const bulkRetryAnswerSchema = {
  ...requeuedCountSchema,
  required: [...requeuedCountSchema.required, 'skipped_webhook_disabled'],
  properties: {
    ...requeuedCountSchema.properties,
    skipped_webhook_disabled: {
      type: 'integer',
      minimum: 0,
      description:
        'Matching entries left in the DLQ because their webhook is disabled (enable it, then retry).',
    },
  },
} as const;
