import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import { concurrentDeliveries } from './concurrency-cap.js';
import { eventsInWindow } from './event-rate-limit.js';

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

/** What a tenant uses of its limits now, as `current_usage` in GET /quotas/:tenant_id. */
export interface QuotaUsage {
  events_sent: number;
  concurrent_deliveries: number;
  dlq_count: number;
}

/** A tenant's limits and its usage of them (GET /quotas, the portal's quota page); undefined for an unknown tenant. */
export async function quotaWithUsage(
  db: Kysely<Database>,
  tenantId: string,
): Promise<{ limits: QuotaLimits; usage: QuotaUsage } | undefined> {
  const limits = await findQuota(db, tenantId);
  if (!limits) return undefined;
  const [events_sent, concurrent_deliveries, dlq_count] = await Promise.all([
    eventsInWindow(db, tenantId),
    concurrentDeliveries(db, tenantId),
    dlqCount(db, tenantId),
  ]);
  return { limits, usage: { events_sent, concurrent_deliveries, dlq_count } };
}
