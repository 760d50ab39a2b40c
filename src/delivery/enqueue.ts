/**
 * How deliveries become graphile-worker jobs. Every writer of jobs (ingestion, retries, DLQ
 * requeue, recovery, re-enabling a webhook, the stale-worker sweep) goes through here, inside
 * its own statement or transaction, so a delivery row and its job commit together.
 *
 * job: a row in graphile_worker's jobs table, task `deliver`, payload `DeliverJobPayload`: one
 * tenant's deliveries (up to `MAX_JOB_DELIVERIES`), each with the attempt number the job makes.
 * Rows stay the truth: a job only names ids, and a delivery that is no longer due at the
 * attempt named (made already, succeeded, dead, paused, deleted) is skipped when the job runs.
 * So a job run twice, or two jobs naming the same delivery, send it once.
 */
import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { Database } from '../db/database.js';

/** The task of every delivery job (deliver_job_spec() in migration 011 names it too). */
export const DELIVER_TASK = 'deliver';

/** Most deliveries one job names. */
export const MAX_JOB_DELIVERIES = 200;

export interface DeliverJobItem {
  id: string;
  /** The attempt number this job makes (1 for the first). */
  attempt: number;
  /** W3C traceparent of the request that caused it, so one trace spans ingest → delivery. */
  traceparent?: string;
}

export interface DeliverJobPayload {
  tenant_id: string;
  deliveries: DeliverJobItem[];
}

export interface DeliveryJob {
  deliveryId: string;
  attempt: number;
  runAt?: Date;
  /** graphile-worker priority: lower runs first. Unset: the tenant's fair rank (below). */
  priority?: number;
  /** The delivery's tenant; looked up when unset. */
  tenantId?: string;
  traceparent?: string;
}

/**
 * The graphile-worker flag every job of a tenant carries. A worker process that must not take
 * a tenant's jobs for now (the tenant is at its concurrency cap) names the flag in
 * `forbiddenFlags`, and its job fetches pass those jobs by. deliver_job_spec() (migration 011)
 * writes it into each job; this is the same `t:<tenant>`.
 */
export const tenantFlag = (tenantId: string): string => `t:${tenantId}`;

/**
 * Fairness between tenants. graphile-worker takes due jobs in (priority, run_at) order, so a
 * tenant that queues 50 000 deliveries would sit in front of every other tenant's next event.
 * Instead, a new job's priority is its place in its own tenant's queue: the tenant's waiting
 * deliveries ahead of the job's first one, counted up to FAIR_RANK_CAP. A tenant with nothing
 * queued runs first; a flood only competes with itself.
 */
export const FAIR_RANK_CAP = 100;
/** Priority of bulk requeues (DLQ retry, recovery): behind every tenant's fresh traffic. */
export const BULK_PRIORITY = FAIR_RANK_CAP + 1;

/**
 * Retries due within this many milliseconds of each other share a job, which runs when the
 * latest of them is due (so none is early; none is later than this).
 */
const RUN_AT_BUCKET_MS = 100;

/**
 * CTEs that add `deliver` jobs for the rows of the relation `source`, with one `add_jobs` call:
 * one job per tenant, run time bucket and priority, of at most MAX_JOB_DELIVERIES. `job_waiting`
 * holds each ranked tenant's waiting deliveries (up to FAIR_RANK_CAP, not counting `source`'s
 * own), `added_jobs` the call; the statement must reference `added_jobs`, or PostgreSQL
 * does not run it. `source` has the columns delivery_id uuid, attempt int, tenant_id text,
 * priority int (null: the tenant's fair rank), run_at timestamptz (null: now), traceparent
 * text, ord int (the order within the call).
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
        from (select distinct tenant_id from ${src} where priority is null) t
    ),
    job_groups as materialized (
      select s.*,
             (row_number() over (partition by s.tenant_id, run_bucket, s.priority order by s.ord) - 1)
               / ${MAX_JOB_DELIVERIES} as chunk
        from (select x.*, ceil(extract(epoch from x.run_at) * 1000 / ${RUN_AT_BUCKET_MS}) as run_bucket
                from ${src} x) s
    ),
    job_ranked as materialized (
      select g.*,
             coalesce(g.priority,
                      least(${FAIR_RANK_CAP}, coalesce(w.waiting, 0) + g.chunk * ${MAX_JOB_DELIVERIES})) as job_priority
        from job_groups g
        left join job_waiting w on w.tenant_id = g.tenant_id
    ),
    added_jobs as (
      -- Only when there is a job to add: add_jobs always sends a NOTIFY (which serialises commits).
      select graphile_worker.add_jobs(specs)
        from (select array(
                select deliver_job_spec(
                         g.tenant_id,
                         json_agg(json_strip_nulls(json_build_object(
                           'id', g.delivery_id, 'attempt', g.attempt, 'traceparent', g.traceparent))
                           order by g.ord),
                         max(g.run_at), g.job_priority::int)
                  from job_ranked g
                 group by g.tenant_id, g.run_bucket, g.priority, g.chunk, g.job_priority
                 order by min(g.ord)) as specs) s
       where cardinality(s.specs) > 0
    )`;
}

/** Adds jobs for these deliveries in one statement with a single `add_jobs` call. */
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
    with given as materialized (
      select * from json_to_recordset(${JSON.stringify(rows)}::json)
        as s(delivery_id uuid, attempt int, tenant_id text, priority int, run_at timestamptz, traceparent text, ord int)
    ),
    src as materialized (
      select s.delivery_id, s.attempt,
             coalesce(s.tenant_id, (select d.tenant_id from deliveries d where d.id = s.delivery_id)) as tenant_id,
             s.priority, s.run_at, s.traceparent, s.ord
        from given s
    ),
    ${deliveryJobCtes('src')}
    select count(*) from added_jobs
  `.execute(db);
}

/**
 * The job's payload, checked; undefined when it is not one. A payload naming one delivery
 * (`{"delivery_id", "attempt"}`) is read as a batch of one: jobs of that shape may still be
 * queued in a database being upgraded.
 */
export function parseDeliverPayload(raw: unknown): DeliverJobPayload | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const record = raw as Record<string, unknown>;
  const tenantId = typeof record.tenant_id === 'string' ? record.tenant_id : undefined;
  const list = Array.isArray(record.deliveries) ? record.deliveries : [record];
  const deliveries: DeliverJobItem[] = [];
  for (const entry of list as unknown[]) {
    if (typeof entry !== 'object' || entry === null) return undefined;
    const { id, delivery_id, attempt, traceparent } = entry as Record<string, unknown>;
    const deliveryId = id ?? delivery_id;
    if (typeof deliveryId !== 'string' || !/^[0-9a-f-]{36}$/i.test(deliveryId)) return undefined;
    if (typeof attempt !== 'number' || !Number.isInteger(attempt) || attempt < 1) return undefined;
    if (traceparent !== undefined && typeof traceparent !== 'string') return undefined;
    deliveries.push({ id: deliveryId, attempt, ...(traceparent !== undefined ? { traceparent } : {}) });
  }
  if (deliveries.length === 0) return undefined;
  return { tenant_id: tenantId ?? '', deliveries };
}
