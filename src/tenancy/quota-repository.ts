import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/database.js';

export interface QuotaLimits {
  max_events_per_sec: number;
  max_concurrent_deliveries: number;
  max_dlq_size: number;
}

export async function findQuota(db: Kysely<Database>, tenantId: string): Promise<QuotaLimits | undefined> {
  return db
    .selectFrom('quotas')
    .select(['max_events_per_sec', 'max_concurrent_deliveries', 'max_dlq_size'])
    .where('tenant_id', '=', tenantId)
    .executeTakeFirst();
}

/**
 * Sets the given limits (others unchanged) and returns the row as it is now. Call it in a
 * transaction: `by` names the caller in the audit row the quotas_audit trigger writes.
 */
export async function updateQuota(
  db: Kysely<Database>,
  tenantId: string,
  changes: Partial<QuotaLimits>,
  by: { actor: string; requestId: string | null },
): Promise<QuotaLimits> {
  await sql`select set_config('hookrelay.actor', ${by.actor}, true),
                   set_config('hookrelay.request_id', ${by.requestId ?? ''}, true)`.execute(db);
  return db
    .updateTable('quotas')
    .set({ ...changes, updated_at: sql<Date>`now()` })
    .where('tenant_id', '=', tenantId)
    .returning(['max_events_per_sec', 'max_concurrent_deliveries', 'max_dlq_size'])
    .executeTakeFirstOrThrow();
}

export async function dlqCount(db: Kysely<Database>, tenantId: string): Promise<number> {
  const row = await sql<{
    n: number;
  }>`select count(*)::int as n from dlq where tenant_id = ${tenantId}`.execute(db);
  return row.rows[0]?.n ?? 0;
}
