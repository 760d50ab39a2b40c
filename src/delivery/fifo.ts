/**
 * FIFO webhooks (ordering 'fifo', migration 020) send one delivery at a time: a delivery whose
 * webhook has an earlier one still waiting is dropped from its job, and the statement that
 * records the earlier one's end queues the next. That statement's snapshot may miss a delivery
 * stored while it ran; this sweep queues any such head that nothing carries: the first waiting
 * delivery of an enabled FIFO webhook, due, unleased, and untouched for `staleAfterMs`. A job
 * too many is harmless (loading a batch re-checks that a delivery is due and unleased).
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import { startPeriodicSweep, type PeriodicSweep } from '../db/periodic-sweep.js';
import type { Logger } from '../observability/logger.js';
import { enqueueDeliveries } from './enqueue.js';

export async function queueStalledFifoHeads(db: Kysely<Database>, staleAfterMs: number): Promise<number> {
  const { rows } = await sql<{
    id: string;
    attempt: number;
    tenant_id: string;
  }>`
    with heads as (
      select distinct on (d.webhook_id) d.id, d.webhook_id, d.attempt_count + 1 as attempt, d.tenant_id,
             d.status, d.next_attempt_at, d.updated_at
        from deliveries d
       where d.fifo_seq is not null and d.status in ('pending', 'failed', 'paused')
       order by d.webhook_id, d.fifo_seq
    )
    select h.id, h.attempt, h.tenant_id
      from heads h
      join webhooks w on w.id = h.webhook_id and w.enabled and w.ordering = 'fifo'
     where h.status in ('pending', 'failed')
       and coalesce(h.next_attempt_at, h.updated_at) < now() - ${staleAfterMs} * interval '1 millisecond'
       and not exists (select 1 from delivery_leases l where l.delivery_id = h.id)
  `.execute(db);
  await enqueueDeliveries(
    db,
    rows.map((row) => ({ deliveryId: row.id, attempt: row.attempt, tenantId: row.tenant_id })),
  );
  return rows.length;
}

export function startFifoSweep(deps: {
  db: Kysely<Database>;
  logger: Logger;
  everyMs: number;
}): PeriodicSweep<number> {
  return startPeriodicSweep({
    name: 'FIFO sweep',
    everyMs: deps.everyMs,
    logger: deps.logger,
    run: async () => {
      const queued = await queueStalledFifoHeads(deps.db, deps.everyMs);
      if (queued > 0) deps.logger.info('FIFO heads queued again', { deliveries: queued });
      return queued;
    },
  });
}

/**
 * A webhook's ordering went from 'fifo' to 'none': its waiting deliveries are no longer held
 * behind one another (fifo_seq cleared), and those not in flight are queued, since a delivery
 * dropped from its job to wait has no job. Call it in the transaction that changes ordering.
 */
export async function releaseFifoOrder(db: Kysely<Database>, webhookId: string): Promise<number> {
  const { rows } = await sql<{
    id: string;
    attempt: number;
    tenant_id: string;
    next_attempt_at: Date | null;
    queue: boolean;
  }>`
    update deliveries d set fifo_seq = null
     where d.webhook_id = ${webhookId} and d.fifo_seq is not null and d.status in ('pending', 'failed', 'paused')
    returning d.id, d.attempt_count + 1 as attempt, d.tenant_id, d.next_attempt_at,
              d.status <> 'paused' and not exists (
                select 1 from delivery_leases l where l.delivery_id = d.id) as queue
  `.execute(db);
  const queue = rows.filter((row) => row.queue);
  await enqueueDeliveries(
    db,
    queue.map((row) => ({
      deliveryId: row.id,
      attempt: row.attempt,
      tenantId: row.tenant_id,
      ...(row.next_attempt_at ? { runAt: row.next_attempt_at } : {}),
    })),
  );
  return queue.length;
}
