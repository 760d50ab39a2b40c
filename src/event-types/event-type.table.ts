import type { ColumnType, Generated } from 'kysely';

/** event type: an entry of a tenant's catalog, with the JSON Schema its payloads must follow. */
export interface EventTypeTable {
  tenant_id: string;
  name: string;
  description: string | null;
  /** JSON Schema (draft 2020-12) of the payload; null: any object. */
  schema: ColumnType<Record<string, unknown> | null, string | null, string | null>;
  deprecated: Generated<boolean>;
  created_at: Generated<Date>;
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
}
