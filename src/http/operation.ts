/**
 * An API operation as the OpenAPI document describes it. Each feature lists its own next to its
 * routes; the app assembles them (api/openapi.ts).
 */
export type JsonSchema = Record<string, unknown>;

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
