/**
 * How deliveries become graphile-worker jobs. Every writer of jobs (ingestion, retries, DLQ
 * requeue, recovery, re-enabling a webhook) goes through here, inside its own transaction, so a
 * delivery row and its job commit together.
 *
 * job: a row in graphile_worker's jobs table, task `deliver`, payload `DeliverJobPayload`,
 * job_key `delivery:<delivery id>` — so a delivery has at most one waiting job, however often
 * it is enqueued (a second enqueue replaces the waiting one).
 */
import { sql, type Kysely, type RawBuilder } from 'kysely';
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
 * The graphile-worker flag every job of a tenant carries. A worker process that must not take
 * a tenant's jobs for now (its share of the process is used, or it is at its concurrency cap)
 * names the flag in `forbiddenFlags`, and its job fetches pass those jobs by.
 */
export const tenantFlag = (tenantId: string): string => `t:${tenantId}`;

/**
 * Fairness between tenants. graphile-worker takes due jobs in (priority, run_at) order, so a
 * tenant that queues 50 000 deliveries would sit in front of every other tenant's next event.
 * Instead, a new job's priority is its place in its own tenant's queue: the tenant's waiting
 * deliveries (counted up to FAIR_RANK_CAP) plus its place in this call. Every tenant's next
 * delivery therefore has rank 0 and runs before anyone's second; a flood only competes with
 * itself. Ranks are fixed when a job is added, so within one tenant a later job may overtake an
 * earlier one with a higher rank — order is not promised outside FIFO mode.
 */
export const FAIR_RANK_CAP = 100;
/** Priority of bulk requeues (DLQ retry, recovery): behind every tenant's fresh traffic. */
export const BULK_PRIORITY = FAIR_RANK_CAP + 1;

/**
 * Two CTEs that add a `deliver` job for each row of the relation `source`, with one `add_jobs`
 * call: `job_waiting` (each ranked tenant's waiting deliveries, up to FAIR_RANK_CAP, not
 * counting this call's own) and `added_jobs`. The statement must reference `added_jobs`, or
 * PostgreSQL does not run it. `source` has the columns delivery_id uuid, attempt int,
 * tenant_id text, priority int (null: the tenant's fair rank), run_at timestamptz,
 * traceparent text, ord int (the order within the call).
 *
 * Each job carries its tenant's flag (`tenantFlag`). queue_name (the job_spec's third field) is
 * null: jobs run in parallel. A per-webhook FIFO
 * mode (one delivery in flight per webhook, in event order) would pass the webhook id there.
 */
export function deliveryJobCtes(source: string): RawBuilder<unknown> {
  const src = sql.raw(source);
  return sql`
    job_waiting as materialized (
      select t.tenant_id,
             (select count(*)::int from (
                select 1 from deliveries d
                 where d.tenant_id = t.tenant_id and d.status = 'pending'
                   and not exists (select 1 from ${src} x where x.delivery_id = d.id)
                 limit ${FAIR_RANK_CAP}) w) as waiting
        from (select distinct tenant_id from ${src} where priority is null and tenant_id is not null) t
    ),
    added_jobs as (
      select 1 from graphile_worker.add_jobs(array(
        select row(
                 ${DELIVER_TASK},
                 json_strip_nulls(json_build_object(
                   'delivery_id', s.delivery_id, 'attempt', s.attempt,
                   'tenant_id', s.tenant_id, 'traceparent', s.traceparent)),
                 null, s.run_at, 25, 'delivery:' || s.delivery_id,
                 coalesce(s.priority, case
                   when s.tenant_id is null then 0
                   else least(${FAIR_RANK_CAP}, coalesce(w.waiting, 0)
                        + row_number() over (partition by s.tenant_id, s.priority is null order by s.ord)::int - 1)
                 end),
                 case when s.tenant_id is not null then array['t:' || s.tenant_id] end
               )::graphile_worker.job_spec
          from ${src} s
          left join job_waiting w on w.tenant_id = s.tenant_id
         order by s.ord
      ))
    )`;
}

/** Adds one job per delivery in one statement with a single `add_jobs` call (one NOTIFY however many). */
export async function enqueueDeliveries(db: Kysely<Database>, jobs: readonly DeliveryJob[]): Promise<void> {
  if (jobs.length === 0) return;
  const rows = jobs.map((job, ord) => ({
    delivery_id: job.deliveryId,
    attempt: job.attempt,
    tenant_id: job.tenantId ?? null,
    priority: job.priority ?? null,
    run_at: job.runAt?.toISOString() ?? null,
    traceparent: job.traceparent ?? null,
    ord,
  }));
  await sql`-- prepared: enqueue_deliveries
    with src as materialized (
      select * from json_to_recordset(${JSON.stringify(rows)}::json)
        as s(delivery_id uuid, attempt int, tenant_id text, priority int, run_at timestamptz, traceparent text, ord int)
    ),
    ${deliveryJobCtes('src')}
    select count(*) from added_jobs
  `.execute(db);
}
