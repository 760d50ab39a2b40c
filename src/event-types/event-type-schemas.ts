/** Request and answer shapes of the event type catalog, as JSON schemas; they feed docs/openapi.json. */
import { nullableTimestamp, tenantIdSchema, tenantQuerySchema } from '../http/common-schemas.js';
import { EVENT_TYPE_PATTERN } from '../webhooks/webhook-schemas.js';

export { tenantQuerySchema };
export const eventTypeNameSchema = { type: 'string', pattern: EVENT_TYPE_PATTERN } as const;

export interface PutEventTypeBody {
  description?: string | null;
  schema?: Record<string, unknown> | null;
  deprecated?: boolean;
  tenant_id?: string;
}

export const putEventTypeSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    description: { type: 'string', maxLength: 2000, nullable: true },
    schema: {
      type: 'object',
      nullable: true,
      description: 'JSON Schema (draft 2020-12) the payloads of this type must follow; null: any object.',
    },
    deprecated: { type: 'boolean', description: 'Still accepted; answers carry a Deprecation header.' },
    tenant_id: { ...tenantIdSchema, description: 'An admin names the tenant whose catalog it is.' },
  },
} as const;

export const eventTypeViewSchema = {
  type: 'object',
  additionalProperties: false,
  required: [
    'name',
    'tenant_id',
    'description',
    'schema',
    'deprecated',
    'built_in',
    'webhooks',
    'created_at',
    'updated_at',
  ],
  properties: {
    name: { type: 'string' },
    tenant_id: { type: 'string' },
    description: { type: 'string', nullable: true },
    schema: { type: 'object', nullable: true },
    deprecated: { type: 'boolean' },
    built_in: {
      type: 'boolean',
      description: "The service's own operational types (hookrelay.*): read-only.",
    },
    webhooks: {
      type: 'integer',
      minimum: 0,
      description: "The tenant's webhooks whose event_types receive this type.",
    },
    created_at: nullableTimestamp,
    updated_at: nullableTimestamp,
  },
} as const;

export const eventTypeListSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['entries'],
  properties: { entries: { type: 'array', items: eventTypeViewSchema } },
} as const;

export interface TenantSettingsBody {
  unknown_event_types: 'accept' | 'reject';
}

export const tenantSettingsSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['unknown_event_types'],
  properties: {
    unknown_event_types: {
      type: 'string',
      enum: ['accept', 'reject'],
      description: 'accept (default): any event type; reject: only types in the catalog (400 otherwise).',
    },
  },
} as const;

export const tenantSettingsViewSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['tenant_id', 'unknown_event_types'],
  properties: {
    tenant_id: { type: 'string' },
    unknown_event_types: { type: 'string', enum: ['accept', 'reject'] },
  },
} as const;
