/**
 * Request and answer shapes of the webhooks API, as JSON schemas. The request schemas are what
 * ajv checks (compiled once, in webhook-routes.ts); all of them feed docs/openapi.json.
 */
import {
  nullableTimestamp,
  paginationProperties,
  tenantIdSchema as tenantId,
  timestamp,
} from '../http/common-schemas.js';
import type { SignatureType } from '../delivery/signing.js';

/** An event type: what POST /events accepts as `type`. */
export const EVENT_TYPE_PATTERN = '^[A-Za-z0-9_.:-]{1,128}$';
/** An `event_types` entry: an exact type, `<prefix>.*`, or `*`. */
export const EVENT_TYPE_FILTER_PATTERN = '^(?:\\*|[A-Za-z0-9_.:-]{1,128}|[A-Za-z0-9_.:-]{1,126}\\.\\*)$';
export const MAX_URL_LENGTH = 2048;
export const MAX_EVENT_TYPES = 100;

const url = {
  type: 'string',
  maxLength: MAX_URL_LENGTH,
  // No spaces or control characters: the URL parser would silently drop some of them.
  pattern: '^[^\\s\\u0000-\\u001f\\u007f]+$',
  description: 'http or https, no credentials, no literal address in a blocked range (SSRF_ALLOWLIST aside).',
} as const;
const eventTypes = {
  type: 'array',
  minItems: 1,
  maxItems: MAX_EVENT_TYPES,
  uniqueItems: true,
  items: { type: 'string', pattern: EVENT_TYPE_FILTER_PATTERN },
  description: 'Exact event types, `<prefix>.*` (any type that starts with `<prefix>.`), or `*` (all).',
} as const;
const secret = {
  type: 'string',
  maxLength: 1024,
  pattern: '^(?!whsec_)[^\\u0000-\\u001f\\u007f]+$|^whsec_[A-Za-z0-9+/]+={0,2}$',
  description:
    'Kept as given. A `whsec_` secret must be followed by base64 (its decoded bytes are the HMAC key); any other string is used as UTF-8 bytes.',
} as const;
const description = { type: 'string', maxLength: 1024, nullable: true } as const;
export const MAX_FILTER_LENGTH = 2000;
const filter = {
  type: 'string',
  minLength: 1,
  maxLength: MAX_FILTER_LENGTH,
  nullable: true,
  description:
    'A SQL/JSON path predicate over the body a receiver gets, {"type", "timestamp", "data"}, e.g. `$.data.amount > 100 && $.data.region == "eu"`: only matching events are delivered. Checked by PostgreSQL (a bad one is a 400 naming filter); one that errors on an event does not match it. null: no filter.',
} as const;
const ordering = {
  type: 'string',
  enum: ['none', 'fifo'],
  description:
    'none (default): deliveries in parallel. fifo: one at a time, in event order; the next is sent once the one before has succeeded or been dead-lettered (throughput ≈ 1 / attempt time). Applies to events accepted after it is set.',
} as const;
const signatureType = {
  type: 'string',
  enum: ['hmac-sha256', 'ed25519'],
  description:
    '`hmac-sha256` (default): signatures `v1,<base64 HMAC>` with `secret`. `ed25519`: signatures `v1a,<base64>`, verified with `public_key`; the service generates the key pair and never shows the private key.',
} as const;
const timeoutMs = {
  type: 'integer',
  minimum: 1,
  maximum: 30000,
  nullable: true,
  description: 'Per-attempt timeout in ms; null = DELIVERY_TIMEOUT_MS.',
} as const;

export interface CreateWebhookBody {
  url: string;
  event_types: string[];
  secret?: string;
  signature_type?: SignatureType;
  tenant_id?: string;
  description?: string | null;
  filter?: string | null;
  ordering?: 'none' | 'fifo';
  timeout_ms?: number | null;
  enabled?: boolean;
}

export const createWebhookSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['url', 'event_types'],
  properties: {
    url,
    event_types: eventTypes,
    secret: { ...secret, description: `${secret.description} hmac-sha256 webhooks only.` },
    signature_type: signatureType,
    tenant_id: tenantId,
    description,
    filter,
    ordering,
    timeout_ms: timeoutMs,
    enabled: { type: 'boolean' },
  },
} as const;

export interface UpdateWebhookBody {
  url?: string;
  event_types?: string[];
  description?: string | null;
  filter?: string | null;
  ordering?: 'none' | 'fifo';
  timeout_ms?: number | null;
  enabled?: boolean;
  tenant_id?: string;
}

export const updateWebhookSchema = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    url,
    event_types: eventTypes,
    description,
    filter,
    ordering,
    timeout_ms: timeoutMs,
    enabled: { type: 'boolean', description: 'false pauses deliveries; true resumes them.' },
    tenant_id: { ...tenantId, description: 'Only checked: a tenant token naming another tenant gets 403.' },
  },
} as const;

export interface RotateSecretBody {
  secret?: string;
  tenant_id?: string;
}

export const rotateSecretSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    secret: {
      ...secret,
      description: `${secret.description} hmac-sha256 webhooks only; ed25519 ones get a new key pair.`,
    },
    tenant_id: tenantId,
  },
} as const;

export interface ListWebhooksQuery {
  limit: number;
  offset: number;
  enabled?: boolean;
  tenant_id?: string;
}

export const listWebhooksQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...paginationProperties,
    enabled: { type: 'boolean' },
    tenant_id: tenantId,
  },
} as const;

/** A webhook as every answer shows it; `secret` only where noted. */
export const webhookViewSchema = {
  type: 'object',
  additionalProperties: false,
  required: [
    'id',
    'tenant_id',
    'url',
    'event_types',
    'description',
    'filter',
    'ordering',
    'timeout_ms',
    'enabled',
    'signature_type',
    'disabled_reason',
    'disabled_at',
    'failing_since',
    'previous_secret_expires_at',
    'created_at',
    'updated_at',
  ],
  properties: {
    id: { type: 'string', format: 'uuid' },
    tenant_id: { type: 'string' },
    url: { type: 'string' },
    event_types: { type: 'array', items: { type: 'string' } },
    description: { type: 'string', nullable: true },
    filter: { type: 'string', nullable: true },
    ordering: { type: 'string', enum: ['none', 'fifo'] },
    timeout_ms: { type: 'integer', nullable: true },
    enabled: { type: 'boolean' },
    signature_type: signatureType,
    public_key: {
      type: 'string',
      pattern: '^whpk_[A-Za-z0-9+/]{43}=$',
      description:
        'ed25519 webhooks only: `whpk_` + base64 of the 32-byte public key receivers verify `v1a` signatures with.',
    },
    disabled_reason: { type: 'string', nullable: true },
    disabled_at: nullableTimestamp,
    failing_since: nullableTimestamp,
    previous_secret_expires_at: {
      ...nullableTimestamp,
      description: 'While in the future, the secret before the last rotation also signs.',
    },
    created_at: timestamp,
    updated_at: timestamp,
    secret: {
      type: 'string',
      description: 'hmac-sha256 webhooks, only in the 201 of POST /webhooks and in rotate-secret.',
    },
    warnings: {
      type: 'array',
      items: { type: 'string' },
      description:
        'POST and PATCH only, when there is something to say: e.g. an exact event type that is not in the tenant\u2019s event type catalog (a typo?).',
    },
  },
} as const;

/** The answer of POST /webhooks and rotate-secret: `secret` (hmac-sha256) or `public_key` (ed25519). */
export const webhookWithSecretSchema = {
  ...webhookViewSchema,
  oneOf: [
    { required: ['secret'], properties: { secret: { type: 'string' } } },
    { required: ['public_key'], properties: { public_key: { type: 'string' } } },
  ],
} as const;

export const webhookSecretSchema = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  maxProperties: 1,
  properties: {
    secret: { type: 'string', description: 'hmac-sha256 webhooks: the current signing secret.' },
    public_key: {
      type: 'string',
      description: 'ed25519 webhooks: the current public key (the private key never leaves the service).',
    },
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

/** POST /webhooks/:id/filter-test: a body as a receiver would get it. */
export interface FilterTestBody {
  type: string;
  timestamp?: string;
  data: Record<string, unknown>;
}

export const filterTestSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['type', 'data'],
  properties: {
    type: { type: 'string', pattern: EVENT_TYPE_PATTERN },
    timestamp: { ...timestamp, description: 'Default: now.' },
    data: { type: 'object', description: 'The event payload.' },
  },
} as const;

export const filterTestAnswerSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['matches', 'filter_matches', 'event_type_matches', 'filter'],
  properties: {
    matches: { type: 'boolean', description: 'Such an event would be delivered to this webhook.' },
    filter_matches: { type: 'boolean', description: 'The filter lets it through (no filter: true).' },
    event_type_matches: { type: 'boolean', description: 'Its type is one of event_types.' },
    filter: { type: 'string', nullable: true },
  },
} as const;
