/**
 * max_concurrent_deliveries, counted across every worker process: a delivery holds a row in
 * `delivery_leases` while its request is in flight (see migrations/003_delivery_leases.sql).
 * The limit is read from `quotas` at every acquisition, so a lowered limit applies to new work
 * at once.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/database.js';

/**
 * Takes the lease, or answers false when the tenant is at its limit. Runs in its own short
 * transaction with synchronous_commit off: a lease lost in a crash is harmless (the worker that
 * held it is gone too, and the sweeper removes what is left).
 */
export async function acquireDeliveryLease(
  db: Kysely<Database>,
  lease: { tenantId: string; deliveryId: string; workerId: string },
): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    await sql`set local synchronous_commit = off`.execute(trx);
    const result = await sql<{ held: boolean }>`
      select acquire_delivery_lease(${lease.tenantId}, ${lease.deliveryId}::uuid, ${lease.workerId}) as held
    `.execute(trx);
    return result.rows[0]?.held === true;
  });
}

/** Gives the lease back; call it in the transaction that records the attempt. */
export async function releaseDeliveryLease(db: Kysely<Database>, deliveryId: string): Promise<void> {
  await sql`delete from delivery_leases where delivery_id = ${deliveryId}::uuid`.execute(db);
}

/** Leases of workers that are gone (their heartbeat went stale). */
export async function releaseLeasesOfWorkers(
  db: Kysely<Database>,
  workerIds: readonly string[],
): Promise<number> {
  if (workerIds.length === 0) return 0;
  const result = await sql`delete from delivery_leases where worker_id = any(${workerIds}::text[])`.execute(
    db,
  );
  return Number(result.numAffectedRows ?? 0);
}

export async function concurrentDeliveries(db: Kysely<Database>, tenantId: string): Promise<number> {
  const row = await sql<{ n: number }>`
    select count(*)::int as n from delivery_leases where tenant_id = ${tenantId}
  `.execute(db);
  return row.rows[0]?.n ?? 0;
}
