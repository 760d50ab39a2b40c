/**
 * The OpenAPI 3.1 document of the API, built from the same JSON schemas ajv checks requests
 * with, so the two cannot drift. docs/openapi.json is its output (`npx tsx src/api/openapi-cli.ts`);
 * a test fails when the file is stale.
 */
import type { Operation } from '../http/operation.js';
import { features } from './features.js';
import { tenantIdSchema } from '../http/common-schemas.js';
import { eventTypeNameSchema } from '../event-types/event-type-schemas.js';

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

export const operations: Operation[] = features.flatMap((feature) => feature.operations);

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
  if (op.path.includes('{name}')) {
    parameters.push({
      name: 'name',
      in: 'path',
      required: true,
      schema: eventTypeNameSchema,
    });
  }
  if (op.path.includes('{tenant_id}')) {
    parameters.push({ name: 'tenant_id', in: 'path', required: true, schema: tenantIdSchema });
  }
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
