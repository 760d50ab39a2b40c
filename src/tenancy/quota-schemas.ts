/** Request and answer shapes of the quotas API, as JSON schemas; they feed docs/openapi.json. */
import type { QuotaLimits } from './quota-repository.js';

const limit = { type: 'integer', minimum: 0, maximum: 1_000_000 } as const;

export const quotaLimitsSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['max_events_per_sec', 'max_concurrent_deliveries', 'max_dlq_size'],
  properties: {
    max_events_per_sec: { ...limit, description: '0: the tenant may send no events (403 events_disabled).' },
    max_concurrent_deliveries: limit,
    max_dlq_size: { ...limit, description: 'A full DLQ disables the webhook whose delivery filled it.' },
  },
} as const;

/** PUT /quotas/:tenant_id: any of the limits, at least one. */
export const quotaChangeSchema = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: quotaLimitsSchema.properties,
} as const;

export type QuotaChange = Partial<QuotaLimits>;

export const quotaViewSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['tenant_id', 'limits', 'current_usage', 'dlq_full'],
  properties: {
    tenant_id: { type: 'string' },
    limits: quotaLimitsSchema,
    current_usage: {
      type: 'object',
      additionalProperties: false,
      required: ['events_sent', 'concurrent_deliveries', 'dlq_count'],
      properties: {
        events_sent: { type: 'integer', minimum: 0, description: 'Events accepted in the current second.' },
        concurrent_deliveries: { type: 'integer', minimum: 0, description: 'Deliveries in flight now.' },
        dlq_count: { type: 'integer', minimum: 0 },
      },
    },
    dlq_full: { type: 'boolean', description: 'dlq_count has reached max_dlq_size.' },
  },
} as const;

export const quotaChangedSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['tenant_id', 'limits'],
  properties: { tenant_id: { type: 'string' }, limits: quotaLimitsSchema },
} as const;
