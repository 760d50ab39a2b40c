/**
 * Request and answer shapes of the events and deliveries API, as JSON schemas: the request
 * schemas are what ajv checks; all of them feed docs/openapi.json.
 */
import { paginationProperties } from '../api/validation.js';
import { EVENT_TYPE_PATTERN, TENANT_ID_PATTERN } from '../webhooks/webhook-schemas.js';

/** Payloads nest at most this deep (objects and arrays); deeper is a 400. */
export const MAX_PAYLOAD_DEPTH = 64;
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;

export interface CreateEventBody {
  type: string;
  payload: Record<string, unknown>;
  tenant_id?: string;
}

export const createEventSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['type', 'payload'],
  properties: {
    type: { type: 'string', pattern: EVENT_TYPE_PATTERN },
    payload: {
      type: 'object',
      description: `Any JSON object, nested at most ${MAX_PAYLOAD_DEPTH} levels deep; the request body as a whole is at most MAX_PAYLOAD_BYTES.`,
    },
    tenant_id: { type: 'string', pattern: TENANT_ID_PATTERN },
  },
} as const;

export interface ListEventsQuery {
  limit: number;
  offset: number;
  type?: string;
  since?: string;
  tenant_id?: string;
}

export const listEventsQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...paginationProperties,
    type: { type: 'string', pattern: EVENT_TYPE_PATTERN, description: 'Only events of exactly this type.' },
    since: {
      type: 'string',
      format: 'date-time',
      description: 'Only events accepted at or after this time.',
    },
    tenant_id: { type: 'string', pattern: TENANT_ID_PATTERN },
  },
} as const;

const uuid = { type: 'string', format: 'uuid' } as const;
const timestamp = { type: 'string', format: 'date-time' } as const;
const nullableTimestamp = { type: 'string', format: 'date-time', nullable: true } as const;

export const eventAcceptedSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['event_id', 'webhooks_queued', 'delivery_ids'],
  properties: {
    event_id: uuid,
    webhooks_queued: { type: 'integer', minimum: 0 },
    delivery_ids: { type: 'array', items: uuid },
  },
} as const;

export const deliveryStatusSchema = {
  type: 'string',
  enum: ['pending', 'succeeded', 'failed', 'dead', 'paused'],
  description:
    'pending (queued or in flight), succeeded, failed (retry scheduled), dead (in the DLQ), paused (webhook disabled).',
} as const;

const deliveryProperties = {
  id: { ...uuid, description: 'Also the `webhook-id` header the receiver gets, the same on every retry.' },
  event_id: uuid,
  webhook_id: uuid,
  tenant_id: { type: 'string' },
  status: deliveryStatusSchema,
  attempt_count: { type: 'integer', minimum: 0 },
  next_attempt_at: nullableTimestamp,
  last_error: { type: 'string', nullable: true },
  last_status_code: { type: 'integer', nullable: true },
  created_at: timestamp,
  updated_at: timestamp,
  succeeded_at: nullableTimestamp,
} as const;

const deliveryRequired = Object.keys(deliveryProperties);

export const deliverySummarySchema = {
  type: 'object',
  additionalProperties: false,
  required: deliveryRequired,
  properties: deliveryProperties,
} as const;

export const eventSummarySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'tenant_id', 'type', 'idempotency_key', 'created_at'],
  properties: {
    id: uuid,
    tenant_id: { type: 'string' },
    type: { type: 'string' },
    idempotency_key: { type: 'string', nullable: true },
    created_at: timestamp,
  },
} as const;

export const eventDetailSchema = {
  type: 'object',
  additionalProperties: false,
  required: [...eventSummarySchema.required, 'payload', 'deliveries'],
  properties: {
    ...eventSummarySchema.properties,
    payload: { type: 'object' },
    deliveries: { type: 'array', items: deliverySummarySchema },
  },
} as const;

export const attemptSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['attempt_number', 'attempted_at', 'status_code', 'error', 'duration_ms', 'response_body'],
  properties: {
    attempt_number: {
      type: 'integer',
      minimum: 1,
      description: 'Within its series; a DLQ retry starts at 1 again.',
    },
    attempted_at: timestamp,
    status_code: { type: 'integer', nullable: true, description: 'Null when no answer came.' },
    error: { type: 'string', nullable: true, description: 'Null on success.' },
    duration_ms: { type: 'integer', minimum: 0 },
    response_body: { type: 'string', nullable: true, description: 'The first 4 KiB.' },
  },
} as const;

export const deliveryDetailSchema = {
  type: 'object',
  additionalProperties: false,
  required: [...deliveryRequired, 'attempts'],
  properties: {
    ...deliveryProperties,
    attempts: { type: 'array', items: attemptSchema, description: 'In time order.' },
  },
} as const;
