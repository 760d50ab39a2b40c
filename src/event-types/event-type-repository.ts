/**
 * The only place with queries on `event_types` (and the catalog settings on `tenants`). A change
 * to a tenant's catalog bumps `tenants.catalog_version` (a trigger, migration 021), which every
 * API process compares before using the schemas it compiled.
 */
import { sql, type Kysely, type Selectable } from 'kysely';
import type { Database } from '../db/database.js';
import type { EventTypeTable } from './event-type.table.js';

export type EventTypeRow = Selectable<EventTypeTable>;
export type UnknownEventTypes = 'accept' | 'reject';

export async function upsertEventType(
  db: Kysely<Database>,
  entry: {
    tenantId: string;
    name: string;
    description: string | null;
    schema: Record<string, unknown> | null;
    deprecated: boolean;
  },
): Promise<{ row: EventTypeRow; created: boolean }> {
  const { rows } = await sql<EventTypeRow & { created: boolean }>`
    insert into event_types (tenant_id, name, description, schema, deprecated)
    values (${entry.tenantId}, ${entry.name}, ${entry.description},
            ${entry.schema === null ? null : JSON.stringify(entry.schema)}::jsonb, ${entry.deprecated})
    on conflict (tenant_id, name) do update
      set description = excluded.description, schema = excluded.schema, deprecated = excluded.deprecated,
          updated_at = now()
    returning *, (xmax = 0) as created
  `.execute(db);
  const { created, ...row } = rows[0]!;
  return { row, created };
}

export async function findEventType(
  db: Kysely<Database>,
  tenantId: string,
  name: string,
): Promise<EventTypeRow | undefined> {
  return db
    .selectFrom('event_types')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('name', '=', name)
    .executeTakeFirst();
}

/** The tenant's catalog, by name. */
export async function listEventTypes(db: Kysely<Database>, tenantId: string): Promise<EventTypeRow[]> {
  return db.selectFrom('event_types').selectAll().where('tenant_id', '=', tenantId).orderBy('name').execute();
}

/** How many of the tenant's webhooks would receive each of these types. */
export async function subscribersOf(
  db: Kysely<Database>,
  tenantId: string,
  names: readonly string[],
): Promise<Map<string, number>> {
  const { rows } = await sql<{ name: string; webhooks: number }>`
    select n as name, (select count(*)::int from webhooks w
                        where w.tenant_id = ${tenantId} and w.event_types && event_type_filters(n)) as webhooks
      from unnest(${names}::text[]) n
  `.execute(db);
  return new Map(rows.map((row) => [row.name, row.webhooks]));
}

export async function deleteEventType(
  db: Kysely<Database>,
  tenantId: string,
  name: string,
): Promise<boolean> {
  const result = await db
    .deleteFrom('event_types')
    .where('tenant_id', '=', tenantId)
    .where('name', '=', name)
    .executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

/** Names in the tenant's catalog (for warnings about webhooks subscribed to unknown types). */
export async function catalogNames(db: Kysely<Database>, tenantId: string): Promise<string[]> {
  const rows = await db.selectFrom('event_types').select('name').where('tenant_id', '=', tenantId).execute();
  return rows.map((row) => row.name);
}

export interface CatalogSnapshot {
  version: string;
  unknownEventTypes: UnknownEventTypes;
  types: Pick<EventTypeRow, 'name' | 'schema' | 'deprecated'>[];
}

export async function catalogVersion(
  db: Kysely<Database>,
  tenantId: string,
): Promise<{ version: string; unknownEventTypes: UnknownEventTypes } | undefined> {
  const { rows } = await sql<{ version: string; unknown_event_types: UnknownEventTypes }>`
    select catalog_version::text as version, unknown_event_types from tenants where id = ${tenantId}
  `.execute(db);
  const row = rows[0];
  return row && { version: row.version, unknownEventTypes: row.unknown_event_types };
}

/** The tenant's catalog as of one moment: its version, its setting and its types, in one statement. */
export async function catalogOf(db: Kysely<Database>, tenantId: string): Promise<CatalogSnapshot> {
  const { rows } = await sql<{
    version: string;
    unknown_event_types: UnknownEventTypes;
    types: CatalogSnapshot['types'];
  }>`
    select coalesce(t.catalog_version::text, '0') as version,
           coalesce(t.unknown_event_types, 'accept') as unknown_event_types,
           coalesce((select json_agg(json_build_object('name', e.name, 'schema', e.schema, 'deprecated', e.deprecated))
                       from event_types e where e.tenant_id = ${tenantId}), '[]') as types
      from (select ${tenantId}::text as id) asked
      left join tenants t on t.id = asked.id
  `.execute(db);
  const row = rows[0]!;
  return { version: row.version, unknownEventTypes: row.unknown_event_types, types: row.types };
}

/** Sets the tenant's unknown_event_types (the catalog version moves with it). */
export async function setUnknownEventTypes(
  db: Kysely<Database>,
  tenantId: string,
  mode: UnknownEventTypes,
): Promise<void> {
  await sql`
    update tenants set unknown_event_types = ${mode}, catalog_version = catalog_version + 1
     where id = ${tenantId}
  `.execute(db);
}
