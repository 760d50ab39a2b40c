/** Query and answer shapes of GET /audit-log, as JSON schemas (ajv and docs/openapi.json). */
import { paginationProperties, tenantIdSchema } from '../http/common-schemas.js';

const name = { type: 'string', pattern: '^[a-z_]{1,64}(\\.[a-z_]{1,64})?$' } as const;

export interface ListAuditQuery {
  limit: number;
  offset: number;
  action?: string;
  object_type?: string;
  object_id?: string;
  tenant_id?: string;
}

export const listAuditQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...paginationProperties,
    action: { ...name, description: 'Exactly this action, e.g. `dlq.retried`.' },
    object_type: { ...name, description: 'e.g. `webhook`, `delivery`, `dlq`, `quota`.' },
    object_id: {
      type: 'string',
      minLength: 1,
      maxLength: 256,
      description: 'e.g. a webhook or delivery id.',
    },
    tenant_id: tenantIdSchema,
  },
} as const;

export const auditEntrySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'at', 'actor', 'action', 'object_type', 'object_id', 'tenant_id', 'request_id', 'details'],
  properties: {
    id: { type: 'string', pattern: '^[0-9]+$', description: 'Increasing; a string because it is a bigint.' },
    at: { type: 'string', format: 'date-time' },
    actor: {
      type: 'string',
      description: '`<tenant_id>:<role>` of the token, or `system` for automatic actions.',
    },
    action: {
      type: 'string',
      description: '`<object type>.<what happened>`, e.g. `webhook.updated`, `dlq.retried`.',
    },
    object_type: { type: 'string' },
    object_id: { type: 'string', nullable: true },
    tenant_id: { type: 'string', nullable: true },
    request_id: {
      type: 'string',
      nullable: true,
      description: 'X-Request-Id of the request; null for `system`.',
    },
    details: { type: 'object', description: 'What changed; never a secret, token, signature or payload.' },
  },
} as const;
