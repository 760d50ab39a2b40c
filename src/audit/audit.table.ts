import type { ColumnType, Generated } from 'kysely';

/** audit entry: who changed what, and through which request. */
export interface AuditLogTable {
  id: Generated<string>;
  at: Generated<Date>;
  /** `<tenant_id>:<role>` from the token, or `system`. */
  actor: string;
  action: string;
  object_type: string;
  object_id: string | null;
  tenant_id: string | null;
  request_id: string | null;
  details: ColumnType<Record<string, unknown>, string | undefined, string>;
}
