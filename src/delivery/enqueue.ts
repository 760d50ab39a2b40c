/**
 * How deliveries become graphile-worker jobs. Every writer of jobs (ingestion, retries, DLQ
 * requeue, recovery, re-enabling a webhook) goes through here, inside its own transaction, so a
 * delivery row and its job commit together.
 *
 * job: a row in graphile_worker's jobs table, task `deliver`, payload `DeliverJobPayload`,
 * job_key `delivery:<delivery id>` — so a delivery has at most one waiting job, however often
 * it is enqueued (a second enqueue replaces the waiting one).
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/database.js';

export const DELIVER_TASK = 'deliver';

export interface DeliverJobPayload {
  delivery_id: string;
  /** The attempt number this job makes (1 for the first); a job whose number is stale does nothing. */
  attempt: number;
  /** The delivery's tenant, when the writer knew it: lets a worker apply its fair share before claiming. */
  tenant_id?: string;
  /** W3C traceparent of the request that caused it, so one trace spans ingest → delivery. */
  traceparent?: string;
}

export interface DeliveryJob {
  deliveryId: string;
  attempt: number;
  runAt?: Date;
  /**
   * graphile-worker priority: lower runs first. Unset with `tenantId` set: the tenant's fair
   * rank (see `fairPriorities`). Unset without a tenant: 0.
   */
  priority?: number;
  tenantId?: string;
  traceparent?: string;
}

export const deliveryJobKey = (deliveryId: string): string => `delivery:${deliveryId}`;

/**
 * Fairness between tenants. graphile-worker takes due jobs in (priority, run_at) order, so a
 * tenant that queues 50 000 deliveries would sit in front of every other tenant's next event.
 * Instead, a new job's priority is its place in its own tenant's queue: the tenant's waiting
 * deliveries (counted up to FAIR_RANK_CAP) plus its place in this call. Every tenant's next
 * delivery therefore has rank 0 and runs before anyone's second; a flood only competes with
 * itself. Ranks are fixed when a job is added, so within one tenant a later job may overtake an
 * earlier one with a higher rank — order is not promised outside FIFO mode.
 */
export const FAIR_RANK_CAP = 1000;
/** Priority of bulk requeues (DLQ retry, recovery): behind every tenant's fresh traffic. */
export const BULK_PRIORITY = FAIR_RANK_CAP + 1;

async function fairPriorities(db: Kysely<Database>, jobs: readonly DeliveryJob[]): Promise<number[]> {
  const ranked = jobs.filter((job) => job.priority === undefined && job.tenantId !== undefined);
  if (ranked.length === 0) return jobs.map((job) => job.priority ?? 0);
  const inThisCall = new Map<string, number>();
  for (const job of ranked) inThisCall.set(job.tenantId!, (inThisCall.get(job.tenantId!) ?? 0) + 1);
  const { rows } = await sql<{ tenant_id: string; waiting: number }>`
    select t.tenant_id,
           (select count(*)::int from (
              select 1 from deliveries d
               where d.tenant_id = t.tenant_id and d.status = 'pending'
               limit ${FAIR_RANK_CAP} + t.in_this_call) waiting) as waiting
      from unnest(${[...inThisCall.keys()]}::text[], ${[...inThisCall.values()]}::int[]) as t(tenant_id, in_this_call)
  `.execute(db);
  // The caller inserted this call's deliveries already: they are in `waiting`, not ahead of it.
  const next = new Map(
    rows.map((row) => [row.tenant_id, Math.max(0, row.waiting - inThisCall.get(row.tenant_id)!)]),
  );
  return jobs.map((job) => {
    if (job.priority !== undefined) return job.priority;
    if (job.tenantId === undefined) return 0;
    const rank = next.get(job.tenantId) ?? 0;
    next.set(job.tenantId, rank + 1);
    return Math.min(rank, FAIR_RANK_CAP);
  });
}

/** Adds one job per delivery with a single `add_jobs` call (one NOTIFY however many). */
export async function enqueueDeliveries(db: Kysely<Database>, jobs: readonly DeliveryJob[]): Promise<void> {
  if (jobs.length === 0) return;
  const priorities = await fairPriorities(db, jobs);
  const specs = jobs.map((job, i) => ({
    key: deliveryJobKey(job.deliveryId),
    payload: {
      delivery_id: job.deliveryId,
      attempt: job.attempt,
      ...(job.tenantId ? { tenant_id: job.tenantId } : {}),
      ...(job.traceparent ? { traceparent: job.traceparent } : {}),
    } satisfies DeliverJobPayload,
    run_at: job.runAt?.toISOString() ?? null,
    priority: priorities[i]!,
  }));
  // queue_name (the third field) is null: jobs run in parallel. A per-webhook FIFO mode (one
  // delivery in flight per webhook, in event order) would pass the webhook id there.
  await sql`
    select 1 from graphile_worker.add_jobs(
      array(
        select row(
          ${DELIVER_TASK}, s.payload, null, s.run_at, 25, s.key, s.priority, null
        )::graphile_worker.job_spec
        from json_to_recordset(${JSON.stringify(specs)}::json)
          as s(key text, payload json, run_at timestamptz, priority int)
      )
    )
  `.execute(db);
}
