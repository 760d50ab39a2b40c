/**
 * Answers of the deliveries API, as JSON schemas: a delivery, its attempts, and what sending
 * one again answers. They feed docs/openapi.json.
 */
import { nullableTimestamp, timestamp, uuid } from '../http/common-schemas.js';

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
