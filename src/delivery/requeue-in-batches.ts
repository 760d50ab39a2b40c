/**
 * Bulk work that starts many deliveries' new series (a DLQ bulk retry, a webhook's recovery)
 * commits in batches: small transactions, each queuing its deliveries at BULK_PRIORITY, behind
 * every tenant's fresh traffic, with one audit row per tenant it touched.
 */
import { writeAudit, type AuditEntry } from '../audit/audit-repository.js';
import type { Db } from '../db/database.js';
import { BULK_PRIORITY, enqueueDeliveries } from './enqueue.js';
import type { RequeuedRow } from './restart-repository.js';

/** Deliveries per bulk transaction: small enough to commit in milliseconds. */
export const BULK_BATCH_SIZE = 500;

/** Runs `batch` in its own transaction until it returns fewer than BULK_BATCH_SIZE rows. */
export async function requeueInBatches(
  db: Db,
  batch: (trx: Db) => Promise<RequeuedRow[]>,
  audit: (tenantId: string, count: number, batchNumber: number) => AuditEntry,
): Promise<number> {
  let total = 0;
  for (let batchNumber = 1; ; batchNumber++) {
    const rows = await db.transaction().execute(async (trx) => {
      const taken = await batch(trx);
      await enqueueDeliveries(
        trx,
        taken.map((row) => ({
          deliveryId: row.id,
          attempt: 1,
          priority: BULK_PRIORITY,
          tenantId: row.tenant_id,
        })),
      );
      const perTenant = new Map<string, number>();
      for (const row of taken) perTenant.set(row.tenant_id, (perTenant.get(row.tenant_id) ?? 0) + 1);
      for (const [tenantId, count] of perTenant) await writeAudit(trx, audit(tenantId, count, batchNumber));
      return taken;
    });
    total += rows.length;
    if (rows.length < BULK_BATCH_SIZE) return total;
  }
}
