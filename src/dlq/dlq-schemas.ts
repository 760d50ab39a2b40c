/**
 * Request and answer shapes of the DLQ, resend and recovery API, as JSON schemas: the request
 * schemas are what ajv checks; all of them feed docs/openapi.json.
 */
import { paginationProperties } from '../api/validation.js';
import { TENANT_ID_PATTERN } from '../webhooks/webhook-schemas.js';

const tenantId = { type: 'string', pattern: TENANT_ID_PATTERN } as const;
const uuid = { type: 'string', format: 'uuid' } as const;
const timestamp = { type: 'string', format: 'date-time' } as const;
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

export interface TenantBody {
  tenant_id?: string;
}

/** Body of the single-object POSTs (retry, resend): optional, `tenant_id` only for the 403 rule. */
export const tenantBodySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    tenant_id: { ...tenantId, description: 'Only checked: a tenant token naming another tenant gets 403.' },
  },
} as const;

export interface RecoverBody {
  since: string;
  until?: string;
  tenant_id?: string;
}

export const recoverSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['since'],
  properties: {
    since: {
      ...timestamp,
      description: 'Deliveries created at or after this time (RFC 3339 with a zone) are sent again.',
    },
    until: { ...timestamp, description: 'Only deliveries created before this time.' },
    tenant_id: { ...tenantId, description: 'Only checked: a tenant token naming another tenant gets 403.' },
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

/** The answer of a single retry or resend (202). */
export const requeuedDeliverySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['delivery_id', 'status', 'previous_status'],
  properties: {
    delivery_id: uuid,
    status: { type: 'string', enum: ['pending'], description: 'Queued for attempt 1 of a new series.' },
    previous_status: { type: 'string', enum: ['succeeded', 'failed', 'dead', 'paused'] },
  },
} as const;

/** The answer of a recovery, given once every batch has committed. */
export const requeuedCountSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['requeued'],
  properties: {
    requeued: { type: 'integer', minimum: 0, description: 'Deliveries queued again in a new series.' },
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
