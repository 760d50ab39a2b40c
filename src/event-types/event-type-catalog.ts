/**
 * Checking a payload against its type's JSON Schema (draft 2020-12) at POST /events. A tenant's
 * schemas are compiled once and kept; before using them a process compares the tenant's
 * `catalog_version` at most once a second, so a change made through any process applies
 * everywhere within a second, without a restart and without compiling per request.
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import * as addFormatsModule from 'ajv-formats';
import type { Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import { AppError, type ErrorDetail } from '../errors.js';
import { catalogOf, catalogVersion, type UnknownEventTypes } from './event-type-repository.js';

const addFormats = addFormatsModule.default as unknown as typeof addFormatsModule.default.default;

/** An Ajv for payload schemas: draft 2020-12, every error, formats, no coercion. */
export function createSchemaAjv(): Ajv2020 {
  const ajv = new Ajv2020({ allErrors: true, strict: false, coerceTypes: false, useDefaults: false });
  addFormats(ajv);
  return ajv;
}

/**
 * Why a schema cannot be used, one detail per problem, or [] when it compiles. On an Ajv of its
 * own: an Ajv keeps every schema it compiled, and refuses a second one with the same `$id`.
 */
export function schemaProblems(schema: unknown): ErrorDetail[] {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
    return [{ field: '/schema', message: 'must be a JSON Schema object' }];
  }
  const ajv = createSchemaAjv();
  if (!ajv.validateSchema(schema)) {
    return (ajv.errors ?? []).map((error) => ({
      field: `/schema${error.instancePath}`,
      message: error.message ?? 'is not valid JSON Schema',
    }));
  }
  try {
    ajv.compile(schema);
    return [];
  } catch (err) {
    return [{ field: '/schema', message: (err as Error).message }];
  }
}

/** ajv's errors for a payload, as the error shape's details, each field a JSON pointer. */
export function payloadDetails(errors: readonly ErrorObject[]): ErrorDetail[] {
  return errors.map((error) => {
    if (error.keyword === 'required') {
      const missing = (error.params as { missingProperty: string }).missingProperty;
      return { field: `/payload${error.instancePath}/${missing}`, message: 'is required' };
    }
    if (error.keyword === 'additionalProperties') {
      const extra = (error.params as { additionalProperty: string }).additionalProperty;
      return { field: `/payload${error.instancePath}/${extra}`, message: 'is not allowed by the schema' };
    }
    return { field: `/payload${error.instancePath}`, message: error.message ?? 'is invalid' };
  });
}

interface CompiledCatalog {
  version: string;
  unknownEventTypes: UnknownEventTypes;
  types: Map<string, { validate: ValidateFunction | undefined; deprecated: boolean }>;
  checkedAt: number;
}

export interface EventCatalog {
  /**
   * Checks an event against the tenant's catalog: a 400 when its type is unknown and the tenant
   * accepts only catalogued types, or when its payload fails the type's schema. Answers whether
   * the type is deprecated.
   */
  check(tenantId: string, type: string, payload: unknown): Promise<{ deprecated: boolean }>;
}

export function createEventCatalog(deps: { db: Kysely<Database>; recheckMs?: number }): EventCatalog {
  const recheckMs = deps.recheckMs ?? 1000;
  const cache = new Map<string, CompiledCatalog>();
  /** A refresh in progress per tenant: requests that find the entry due share one query. */
  const refreshing = new Map<string, Promise<CompiledCatalog>>();

  function compiled(tenantId: string): Promise<CompiledCatalog> {
    const known = cache.get(tenantId);
    if (known && Date.now() - known.checkedAt < recheckMs) return Promise.resolve(known);
    let refresh = refreshing.get(tenantId);
    if (!refresh) {
      refresh = refreshed(tenantId).finally(() => refreshing.delete(tenantId));
      refreshing.set(tenantId, refresh);
    }
    return refresh;
  }

  /** The tenant's entry after comparing its version (or loading it): called only when it is due. */
  async function refreshed(tenantId: string): Promise<CompiledCatalog> {
    const now = Date.now();
    const known = cache.get(tenantId);
    if (known) {
      const head = await catalogVersion(deps.db, tenantId);
      if (head && head.version === known.version) {
        known.checkedAt = now;
        return known;
      }
    }
    const snapshot = await catalogOf(deps.db, tenantId);
    // An Ajv per snapshot, dropped with it: one kept for good would hold every schema it ever
    // compiled, and refuse a tenant's schema again (or another tenant's) with the same `$id`.
    const ajv = createSchemaAjv();
    const entry: CompiledCatalog = {
      version: snapshot.version,
      unknownEventTypes: snapshot.unknownEventTypes,
      types: new Map(
        snapshot.types.map((type) => [
          type.name,
          { validate: type.schema ? ajv.compile(type.schema) : undefined, deprecated: type.deprecated },
        ]),
      ),
      checkedAt: now,
    };
    cache.set(tenantId, entry);
    return entry;
  }

  return {
    async check(tenantId, type, payload) {
      const catalog = await compiled(tenantId);
      const entry = catalog.types.get(type);
      if (!entry) {
        if (catalog.unknownEventTypes === 'reject') {
          throw new AppError('invalid_request', 'The event type is not in the catalog.', {
            details: [{ field: '/type', message: `${type} is not in this tenant's event type catalog` }],
          });
        }
        return { deprecated: false };
      }
      if (entry.validate && !entry.validate(payload)) {
        throw new AppError('invalid_request', `The payload does not match the schema of ${type}.`, {
          details: payloadDetails(entry.validate.errors ?? []),
        });
      }
      return { deprecated: entry.deprecated };
    },
  };
}
