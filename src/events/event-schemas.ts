/**
 * Request and answer shapes of the events and deliveries API, as JSON schemas: the request
 * schemas are what ajv checks; all of them feed docs/openapi.json.
 */
import { paginationProperties, tenantIdSchema, timestamp, uuid } from '../http/common-schemas.js';
import { deliverySummarySchema } from '../delivery/delivery-schemas.js';
import { EVENT_TYPE_PATTERN } from '../webhooks/webhook-schemas.js';

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
    tenant_id: tenantIdSchema,
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
    tenant_id: tenantIdSchema,
  },
} as const;

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
