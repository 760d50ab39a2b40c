/**
 * The OpenAPI 3.1 document of the API, built from the same JSON schemas ajv checks requests
 * with, so the two cannot drift. docs/openapi.json is its output (`npx tsx src/api/openapi-cli.ts`);
 * a test fails when the file is stale.
 */
import { listAnswerSchema } from './list-answer.js';
import {
  createWebhookSchema,
  listWebhooksQuerySchema,
  rotateSecretSchema,
  tenantQuerySchema,
  updateWebhookSchema,
  webhookSecretSchema,
  webhookViewSchema,
  webhookWithSecretSchema,
} from '../webhooks/webhook-schemas.js';
import {
  createEventSchema,
  deliveryDetailSchema,
  eventAcceptedSchema,
  eventDetailSchema,
  eventSummarySchema,
  listEventsQuerySchema,
  MAX_IDEMPOTENCY_KEY_LENGTH,
} from '../events/event-schemas.js';
import {
  bulkRetryAnswerSchema,
  bulkRetrySchema,
  deadLetterSchema,
  listDlqQuerySchema,
  recoverSchema,
  requeuedCountSchema,
  requeuedDeliverySchema,
  tenantBodySchema,
} from '../dlq/dlq-schemas.js';
import { auditEntrySchema, listAuditQuerySchema } from '../audit/audit-schemas.js';

type JsonSchema = Record<string, unknown>;

export const errorSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      additionalProperties: false,
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', description: 'snake_case, e.g. invalid_request, not_found.' },
        message: { type: 'string' },
        details: {
          type: 'array',
          description: 'For 400: one entry per failing field.',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['field', 'message'],
            properties: { field: { type: 'string' }, message: { type: 'string' } },
          },
        },
      },
    },
  },
} as const;

export interface Operation {
  method: 'get' | 'post' | 'patch' | 'put' | 'delete';
  path: string;
  summary: string;
  description?: string;
  /** What the `{id}` in the path names, when not the path's first segment (e.g. "Delivery" for /dlq/{id}). */
  idOf?: string;
  /** Object schema whose properties are the query parameters. */
  query?: { properties: Record<string, unknown> };
  body?: JsonSchema;
  /** The body may be left out entirely. */
  bodyOptional?: boolean;
  headers?: { name: string; description: string; schema: JsonSchema }[];
  /** Status → answer schema (undefined for an empty answer). */
  responses: Record<number, { description: string; schema?: JsonSchema; headers?: Record<string, string> }>;
  /** Error statuses besides 401 (which every operation has). */
  errors: number[];
}

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'Invalid input; `details` lists each failing field (unknown fields too).',
  401: 'Missing, malformed, expired or wrongly signed token.',
  403: 'A tenant token naming another tenant; on POST /events also events_disabled: the tenant may send none (max_events_per_sec 0).',
  404: 'No such object, or it belongs to another tenant.',
  409: 'Conflict.',
  413: 'Body larger than MAX_PAYLOAD_BYTES.',
  415: 'Body not JSON (or no content type).',
  429: 'Rate limited; see Retry-After.',
  503: 'Database not reachable; see Retry-After.',
};

const idParam = (what: string) => ({
  name: 'id',
  in: 'path',
  required: true,
  description: `${what} id; anything that is not a UUID is a 404.`,
  schema: { type: 'string', format: 'uuid' },
});

export const operations: Operation[] = [
  {
    method: 'post',
    path: '/webhooks',
    summary: 'Register a webhook',
    description: 'The only answer (with rotate-secret and GET …/secret) that shows the secret.',
    body: createWebhookSchema,
    responses: { 201: { description: 'Created.', schema: webhookWithSecretSchema } },
    errors: [400, 403, 413, 415],
  },
  {
    method: 'get',
    path: '/webhooks',
    summary: 'List webhooks, newest first',
    description: 'An admin token without tenant_id lists every tenant.',
    query: listWebhooksQuerySchema,
    responses: { 200: { description: 'A page.', schema: listAnswerSchema(webhookViewSchema) as JsonSchema } },
    errors: [400, 403],
  },
  {
    method: 'get',
    path: '/webhooks/{id}',
    summary: 'Read a webhook (without its secret)',
    query: tenantQuerySchema,
    responses: { 200: { description: 'The webhook.', schema: webhookViewSchema } },
    errors: [400, 403, 404],
  },
  {
    method: 'get',
    path: '/webhooks/{id}/secret',
    summary: "Read a webhook's current signing secret",
    query: tenantQuerySchema,
    responses: { 200: { description: 'The secret.', schema: webhookSecretSchema } },
    errors: [400, 403, 404],
  },
  {
    method: 'patch',
    path: '/webhooks/{id}',
    summary: 'Change a webhook',
    description:
      '`enabled: false` records disabled_reason ("disabled by <tenant>:<role>") and disabled_at; `enabled: true` clears them and failing_since.',
    body: updateWebhookSchema,
    responses: { 200: { description: 'The changed webhook.', schema: webhookViewSchema } },
    errors: [400, 403, 404, 413, 415],
  },
  {
    method: 'delete',
    path: '/webhooks/{id}',
    summary: 'Delete a webhook, with its deliveries and dead letters',
    query: tenantQuerySchema,
    responses: { 204: { description: 'Deleted.' } },
    errors: [400, 403, 404],
  },
  {
    method: 'post',
    path: '/webhooks/{id}/rotate-secret',
    summary: 'Rotate the signing secret',
    description:
      'The new secret (generated, or `secret` from the body) signs from now on; the old one also signs, as a second signature, for 24 h.',
    body: rotateSecretSchema,
    bodyOptional: true,
    responses: { 200: { description: 'The webhook with its new secret.', schema: webhookWithSecretSchema } },
    errors: [400, 403, 404, 413, 415],
  },
  {
    method: 'post',
    path: '/events',
    summary: 'Accept an event',
    description:
      'The event, one delivery per matching enabled webhook and their jobs are committed before the 202.',
    body: createEventSchema,
    headers: [
      {
        name: 'Idempotency-Key',
        description:
          'The same key from the same tenant within 24 h answers with the first answer (202, header Idempotent-Replayed: true) and creates nothing.',
        schema: { type: 'string', minLength: 1, maxLength: MAX_IDEMPOTENCY_KEY_LENGTH },
      },
    ],
    responses: { 202: { description: 'Accepted and committed.', schema: eventAcceptedSchema } },
    errors: [400, 403, 413, 415, 429, 503],
  },
  {
    method: 'get',
    path: '/events',
    summary: 'List events, newest first (without payloads)',
    query: listEventsQuerySchema,
    responses: {
      200: { description: 'A page.', schema: listAnswerSchema(eventSummarySchema) as JsonSchema },
    },
    errors: [400, 403],
  },
  {
    method: 'get',
    path: '/events/{id}',
    summary: 'Read an event, its payload and its deliveries',
    query: tenantQuerySchema,
    responses: { 200: { description: 'The event.', schema: eventDetailSchema } },
    errors: [400, 403, 404],
  },
  {
    method: 'get',
    path: '/deliveries/{id}',
    summary: 'Read a delivery and every attempt, in time order',
    query: tenantQuerySchema,
    responses: { 200: { description: 'The delivery.', schema: deliveryDetailSchema } },
    errors: [400, 403, 404],
  },
  {
    method: 'post',
    path: '/deliveries/{id}/retry',
    summary: 'Send a delivery again, in a new series of attempts',
    description:
      'Any delivery that is not queued or in flight: succeeded (a manual resend), failed (the scheduled retry is replaced), dead (it also leaves the DLQ) or paused. 409 when it is `pending`, or when its webhook is disabled. Same `webhook-id`; attempt numbers restart at 1.',
    body: tenantBodySchema,
    bodyOptional: true,
    responses: { 202: { description: 'Queued for attempt 1.', schema: requeuedDeliverySchema } },
    errors: [400, 403, 404, 409, 413, 415],
  },
  {
    method: 'post',
    path: '/webhooks/{id}/recover',
    summary: 'Send every failed or dead delivery of a webhook created since a time again',
    description:
      'For when the endpoint was down and is back: each `failed` or `dead` delivery created in [since, until) starts a new series, behind fresh traffic, in batches; dead ones leave the DLQ. Answers when every batch has committed. 409 when the webhook is disabled.',
    body: recoverSchema,
    responses: { 200: { description: 'How many were queued again.', schema: requeuedCountSchema } },
    errors: [400, 403, 404, 409, 413, 415],
  },
  {
    method: 'get',
    path: '/dlq',
    summary: 'List dead letters, newest first',
    description: 'An admin token without tenant_id lists every tenant.',
    query: listDlqQuerySchema,
    responses: { 200: { description: 'A page.', schema: listAnswerSchema(deadLetterSchema) as JsonSchema } },
    errors: [400, 403],
  },
  {
    method: 'post',
    path: '/dlq/{id}/retry',
    idOf: 'Delivery',
    summary: 'Retry one dead letter',
    description:
      'The entry leaves the DLQ and the delivery starts a new series (same `webhook-id`), in one transaction. 409 when its webhook is disabled.',
    body: tenantBodySchema,
    bodyOptional: true,
    responses: { 202: { description: 'Queued for attempt 1.', schema: requeuedDeliverySchema } },
    errors: [400, 403, 404, 409, 413, 415],
  },
  {
    method: 'post',
    path: '/dlq/retry',
    summary: 'Retry every matching dead letter',
    description:
      'Entries dead-lettered before the call, oldest first, in batches of 500 per transaction, queued behind fresh traffic. Entries of disabled webhooks stay. Answers when every batch has committed.',
    body: bulkRetrySchema,
    bodyOptional: true,
    responses: {
      200: { description: 'How many were queued again, and how many stayed.', schema: bulkRetryAnswerSchema },
    },
    errors: [400, 403, 413, 415],
  },
  {
    method: 'delete',
    path: '/dlq/{id}',
    idOf: 'Delivery',
    summary: 'Delete a dead letter',
    description:
      'The delivery and its attempts stay (status `dead`); it no longer counts against max_dlq_size.',
    query: tenantQuerySchema,
    responses: { 204: { description: 'Deleted.' } },
    errors: [400, 403, 404],
  },
  {
    method: 'get',
    path: '/audit-log',
    summary: 'List audit rows, newest first',
    description: 'A tenant sees rows of its own tenant; an admin token without tenant_id sees all.',
    query: listAuditQuerySchema,
    responses: { 200: { description: 'A page.', schema: listAnswerSchema(auditEntrySchema) as JsonSchema } },
    errors: [400, 403],
  },
];

/** ajv's `nullable: true` (OpenAPI 3.0) becomes a 3.1 type union; everything else is kept. */
export function toOpenApiSchema(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(toOpenApiSchema);
  if (schema === null || typeof schema !== 'object') return schema;
  const { nullable, ...rest } = schema as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(rest)) {
    out[key] = key === 'properties' ? mapValues(value, toOpenApiSchema) : toOpenApiSchema(value);
  }
  if (nullable === true && typeof out.type === 'string') out.type = [out.type, 'null'];
  return out;
}

const mapValues = (value: unknown, fn: (v: unknown) => unknown): Record<string, unknown> =>
  Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, fn(v)]));

function operationObject(op: Operation): Record<string, unknown> {
  const parameters: unknown[] = [];
  if (op.path.includes('{id}')) parameters.push(idParam(op.idOf ?? op.path.split('/')[1]!.replace(/s$/, '')));
  for (const [name, schema] of Object.entries(op.query?.properties ?? {})) {
    parameters.push({ name, in: 'query', required: false, schema: toOpenApiSchema(schema) });
  }
  for (const header of op.headers ?? []) {
    parameters.push({
      name: header.name,
      in: 'header',
      required: false,
      description: header.description,
      schema: header.schema,
    });
  }
  const responses: Record<string, unknown> = {};
  for (const [status, answer] of Object.entries(op.responses)) {
    responses[status] = {
      description: answer.description,
      ...(answer.schema
        ? { content: { 'application/json': { schema: toOpenApiSchema(answer.schema) } } }
        : {}),
    };
  }
  for (const status of [...op.errors, 401].sort()) {
    responses[String(status)] = {
      description: ERROR_DESCRIPTIONS[status],
      content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
    };
  }
  return {
    summary: op.summary,
    ...(op.description ? { description: op.description } : {}),
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(op.body
      ? {
          requestBody: {
            required: !op.bodyOptional,
            content: { 'application/json': { schema: toOpenApiSchema(op.body) } },
          },
        }
      : {}),
    responses,
  };
}

export function buildOpenApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of operations) (paths[op.path] ??= {})[op.method] = operationObject(op);
  return {
    openapi: '3.1.0',
    info: {
      title: 'Webhook delivery service',
      version: '0.1.0',
      description: 'See docs/api.md for the decisions behind these shapes.',
    },
    security: [{ bearer: [] }],
    components: {
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description: 'HS256 with JWT_SECRET; claims tenant_id, role (tenant | admin), exp.',
        },
      },
      schemas: { Error: toOpenApiSchema(errorSchema) },
    },
    paths,
  };
}
