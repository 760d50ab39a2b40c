/**
 * JSON schemas every feature's routes share: the tenant a request names, paging, and the list
 * answer's shape.
 */
import { TENANT_ID_PATTERN } from '../tenancy/caller.js';

export const uuid = { type: 'string', format: 'uuid' } as const;
export const timestamp = { type: 'string', format: 'date-time' } as const;
export const nullableTimestamp = { type: 'string', format: 'date-time', nullable: true } as const;

export const tenantIdSchema = { type: 'string', pattern: TENANT_ID_PATTERN } as const;

export interface TenantQuery {
  tenant_id?: string;
}

/** By-id routes take an optional `tenant_id`, only to apply the 403 rule. */
export const tenantQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: { tenant_id: tenantIdSchema },
} as const;

export interface TenantBody {
  tenant_id?: string;
}

/** Body of the single-object POSTs (retry, resend): optional, `tenant_id` only for the 403 rule. */
export const tenantBodySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    tenant_id: {
      ...tenantIdSchema,
      description: 'Only checked: a tenant token naming another tenant gets 403.',
    },
  },
} as const;

/** `{ limit, offset }` with the contract's defaults: limit 1–500 (default 50), offset ≥ 0. */
export const paginationProperties = {
  limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
  offset: { type: 'integer', minimum: 0, maximum: 10_000_000, default: 0 },
} as const;

/** A list answer whose entries follow `entry`: `{"entries", "total", "limit", "offset"}`. */
export function listAnswerSchema(entry: object): object {
  return {
    type: 'object',
    required: ['entries', 'total', 'limit', 'offset'],
    properties: {
      entries: { type: 'array', items: entry },
      total: { type: 'integer', minimum: 0 },
      limit: { type: 'integer', minimum: 1, maximum: 500 },
      offset: { type: 'integer', minimum: 0 },
    },
  };
}
