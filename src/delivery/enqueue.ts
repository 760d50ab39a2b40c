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
  /** W3C traceparent of the request that caused it, so one trace spans ingest → delivery. */
  traceparent?: string;
}

export interface DeliveryJob {
  deliveryId: string;
  attempt: number;
  runAt?: Date;
  /** graphile-worker priority: lower runs first. Fresh traffic 0; bulk requeues use a higher number. */
  priority?: number;
  traceparent?: string;
}

export const deliveryJobKey = (deliveryId: string): string => `delivery:${deliveryId}`;

/** Adds one job per delivery with a single `add_jobs` call (one NOTIFY however many). */
export async function enqueueDeliveries(db: Kysely<Database>, jobs: readonly DeliveryJob[]): Promise<void> {
  if (jobs.length === 0) return;
  const specs = jobs.map((job) => ({
    key: deliveryJobKey(job.deliveryId),
    payload: {
      delivery_id: job.deliveryId,
      attempt: job.attempt,
      ...(job.traceparent ? { traceparent: job.traceparent } : {}),
    } satisfies DeliverJobPayload,
    run_at: job.runAt?.toISOString() ?? null,
    priority: job.priority ?? 0,
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
