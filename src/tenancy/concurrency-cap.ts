/**
 * max_concurrent_deliveries, counted across every worker process: a delivery holds a row in
 * `delivery_leases` while its request is in flight (see migrations/003_delivery_leases.sql).
 * The lease is taken by `take_delivery_leases()` (migrations/007) when a batch is loaded
 * (delivery-repository `loadBatch`) or its deliveries are stored (`storeEventBatch`), and given
 * back by the statement that records the attempt; the limit is read from `quotas` at every
 * acquisition, so a lowered limit applies to new work at once. Leases of dead workers are swept
 * and their deliveries queued again (worker-heartbeat).
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/database.js';

export async function concurrentDeliveries(db: Kysely<Database>, tenantId: string): Promise<number> {
  const row = await sql<{ n: number }>`
    select count(*)::int as n from delivery_leases where tenant_id = ${tenantId}
  `.execute(db);
  return row.rows[0]?.n ?? 0;
}
