/**
 * The delivery path's queries: `loadBatch` (what a job names, still due, with a lease for each
 * delivery about to be sent) and `recordAttempts` (every end state, in one statement).
 *
 * A delivery is due at attempt n while `attempt_count = n - 1` and it is `pending`, or `failed`
 * with its retry due. Its lease (`delivery_leases`) marks it in flight: taken by `loadBatch`,
 * deleted by `recordAttempts`, and by the stale-worker sweep if its holder dies (which queues
 * the delivery again). Recording checks `attempt_count` and status, so an attempt is written
 * once however often it is made.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import { webhookHealthUpdate } from '../webhooks/webhook-state.js';
import type { SignatureType } from './signing.js';
import { BULK_PRIORITY, deliveryJobCtes, enqueueDeliveries, type DeliverJobItem } from './enqueue.js';

/** A delivery loaded for sending: the delivery, its webhook and its event. */
export interface LoadedDelivery {
  id: string;
  attempt: number;
  event_id: string;
  webhook_id: string;
  tenant_id: string;
  url: string;
  signature_type: SignatureType;
  /** Encrypted as stored (webhooks/webhook-secrets.ts); decrypted only to sign (signing-keys.ts). */
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: Date | null;
  secret_key_id: string | null;
  timeout_ms: number | null;
  /** As read at the load; lets a success skip the health update when there is nothing to clear. */
  failing_since: Date | null;
  event_type: string;
  payload: unknown;
  event_created_at: Date;
  traceparent: string | null;
}

export interface LoadedBatch {
  /** Due, leased: to be sent now by the caller, who must record each. */
  leased: LoadedDelivery[];
  /** Due, but the tenant is at max_concurrent_deliveries: queued again at `deferredUntil`. */
  deferred: number;
  /** Due, beyond `limit` (this process's room): queued again now. */
  requeued: number;
  deferredUntil: Date | undefined;
}

/** How long a delivery over its tenant's concurrency cap waits before its next try. */
const DEFER_MIN_MS = 100;
const DEFER_JITTER_MS = 200;

/**
 * One statement for a job's batch: which of its deliveries are still due at the attempt named;
 * of those, the ones whose webhook is disabled become `paused`; the others get a lease each, in
 * the job's order, up to the tenant's max_concurrent_deliveries (`take_delivery_leases`),
 * and are answered with what their requests need. A due delivery whose lease someone else holds
 * is left to that holder. Those refused by the cap are queued again shortly, behind fresh
 * traffic; those beyond `limit` (the caller's room for requests) at once.
 */
export async function loadBatch(
  db: Kysely<Database>,
  items: readonly DeliverJobItem[],
  leaseOwner: string,
  limit: number = items.length,
): Promise<LoadedBatch> {
  const requested = items.map((item, ord) => ({
    id: item.id,
    attempt: item.attempt,
    traceparent: item.traceparent ?? null,
    ord,
  }));
  const deferredUntil = new Date(Date.now() + DEFER_MIN_MS + Math.random() * DEFER_JITTER_MS);
  const { rows } = await sql<
    LoadedDelivery & { state: 'leased' | 'deferred' | 'unasked' }
  >`-- prepared: load_delivery_batch
    with requested as materialized (
      select * from json_to_recordset(${JSON.stringify(requested)}::json)
        as r(id uuid, attempt int, traceparent text, ord int)
    ), due as materialized (
      select d.id, r.attempt, d.event_id, d.webhook_id, d.tenant_id, r.traceparent, r.ord
        from deliveries d
        join requested r on r.id = d.id
       -- By primary key whatever the statistics say (a hash join would read the whole table).
       where d.id = any (array(select id from requested))
         and d.attempt_count = r.attempt - 1
         and (d.status = 'pending' or (d.status = 'failed' and d.next_attempt_at <= now()))
         -- A FIFO webhook's delivery waits while one before it waits; the one whose end is
         -- recorded queues the next (recordAttempts), so it is dropped from this job.
         and (d.fifo_seq is null or not exists (
               select 1 from deliveries p
                where p.webhook_id = d.webhook_id and p.fifo_seq < d.fifo_seq
                  and p.fifo_seq is not null and p.status in ('pending', 'failed', 'paused')))
    ), webhook as materialized (
      select w.* from webhooks w where w.id = any (array(select webhook_id from due))
    ), sendable as materialized (
      select due.*, row_number() over (order by due.ord) <= ${limit} as asked
        from due join webhook w on w.id = due.webhook_id
       where w.enabled
    ), leases as materialized (
      select * from take_delivery_leases(${leaseOwner},
               array(select id from sendable where asked order by ord),
               array(select tenant_id from sendable where asked order by ord),
               array(select attempt from sendable where asked order by ord))
    ), paused as (
      -- The webhook row is read under a share lock: a re-enable in progress is waited for and
      -- seen, so no delivery is left paused behind a webhook enabled meanwhile.
      update deliveries d
         set status = 'paused', next_attempt_at = null, updated_at = now()
        from due
       where d.id = due.id
         -- Still due, and not in flight elsewhere (whose end must not be overwritten).
         and d.status in ('pending', 'failed') and d.attempt_count = due.attempt - 1
         and not exists (select 1 from delivery_leases l where l.delivery_id = d.id)
         and due.webhook_id in (
               select w.id from webhooks w
                where w.id = any (array(select webhook_id from due where webhook_id not in (
                        select id from webhook where enabled)))
                  and not w.enabled
                  for share)
      returning d.id
    ), deferred as materialized (
      -- Refused by the tenant's cap: shortly, behind fresh traffic. Beyond this process's room:
      -- now, for whichever process has room.
      select due.id as delivery_id, due.attempt, due.tenant_id,
             case when s.asked then ${BULK_PRIORITY}::int end as priority,
             case when s.asked then ${deferredUntil.toISOString()}::timestamptz end as run_at,
             due.traceparent, due.ord, coalesce(s.asked, true) as capped
        from due
        left join sendable s on s.id = due.id
       where due.id not in (select delivery_id from leases)
         and due.id not in (select id from paused)
    ), ${deliveryJobCtes('deferred')}
    select s.id, s.attempt, s.event_id, s.webhook_id, s.tenant_id, s.traceparent,
           w.url, w.signature_type, w.secret, w.previous_secret, w.previous_secret_expires_at, w.secret_key_id,
           w.timeout_ms, w.failing_since, e.type as event_type, e.payload, e.created_at as event_created_at,
           'leased' as state
      from sendable s
      join leases l on l.delivery_id = s.id and l.taken
      join webhook w on w.id = s.webhook_id
      join events e on e.id = s.event_id
    union all
    select null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null,
           case when capped then 'deferred' else 'unasked' end
      from deferred
     where (select count(*) from added_jobs) >= 0
  `.execute(db);
  const leased = rows.filter((row) => row.state === 'leased');
  const deferred = rows.filter((row) => row.state === 'deferred').length;
  const requeued = rows.length - leased.length - deferred;
  return { leased, deferred, requeued, deferredUntil: deferred > 0 ? deferredUntil : undefined };
}

export interface AttemptRecord {
  attemptNumber: number;
  statusCode: number | null;
  error: string | null;
  durationMs: number;
  responseBody: string | null;
  responseHeaders: Record<string, string> | null;
}

export type FinalState =
  | { status: 'succeeded' }
  | { status: 'failed'; nextAttemptAt: Date }
  | { status: 'dead' }
  /** 410 Gone: the webhook is disabled and the delivery waits. */
  | { status: 'paused' };

/** An attempt's end, as `recordAttempts` writes it. */
export interface AttemptEnd {
  delivery: Pick<
    LoadedDelivery,
    'id' | 'tenant_id' | 'webhook_id' | 'event_id' | 'traceparent' | 'event_type'
  >;
  attempt: AttemptRecord;
  state: FinalState;
  /** The webhook's failing_since to set: 'healthy' clears it, 'failing' starts it; undefined leaves it. */
  health?: 'healthy' | 'failing';
}

/**
 * Attempts' ends in one statement: each delivery's new state and attempt row, its lease given
 * back, the webhooks' health, and one job per tenant and due time for the retries. Answers the
 * deliveries recorded; an attempt already recorded (the same attempt made twice) is not written
 * again.
 */
export async function recordAttempts(
  db: Kysely<Database>,
  ends: readonly AttemptEnd[],
  leaseOwner: string,
): Promise<Set<string>> {
  if (ends.length === 0) return new Set();
  const rows = ends.map(({ delivery, attempt, state }, ord) => ({
    delivery_id: delivery.id,
    tenant_id: delivery.tenant_id,
    traceparent: delivery.traceparent,
    status: state.status,
    next_attempt_at: state.status === 'failed' ? state.nextAttemptAt.toISOString() : null,
    attempt_number: attempt.attemptNumber,
    status_code: attempt.statusCode,
    error: attempt.error,
    duration_ms: attempt.durationMs,
    response_body: attempt.responseBody,
    response_headers: attempt.responseHeaders,
    ord,
  }));
  // The last word on each webhook's health in this batch.
  const health = new Map<string, boolean>();
  for (const end of ends) if (end.health) health.set(end.delivery.webhook_id, end.health === 'failing');
  // In id order, so two record statements touching the same webhooks cannot deadlock.
  const healthRows = [...health]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([webhook_id, failing]) => ({ webhook_id, failing }));
  const result = await sql<{ id: string }>`-- prepared: record_attempts
    with f as materialized (
      select * from json_to_recordset(${JSON.stringify(rows)}::json) as f(
        delivery_id uuid, tenant_id text, traceparent text, status text, next_attempt_at timestamptz,
        attempt_number int, status_code int, error text, duration_ms int, response_body text,
        response_headers jsonb, ord int)
    ), recorded as materialized (
      update deliveries d
         set attempt_count = f.attempt_number,
             status = f.status,
             next_attempt_at = f.next_attempt_at,
             last_error = f.error,
             last_status_code = f.status_code,
             succeeded_at = case when f.status = 'succeeded' then now() else d.succeeded_at end,
             updated_at = now()
        from f
       where d.id = any (array(select delivery_id from f))
         and d.id = f.delivery_id
         and d.attempt_count = f.attempt_number - 1
         and d.status in ('pending', 'failed')
      returning d.id, d.webhook_id, d.fifo_seq
    ), released as (
      delete from delivery_leases
       where delivery_id = any (array(select delivery_id from f)) and worker_id = ${leaseOwner}
    ), attempts as (
      insert into delivery_attempts
        (delivery_id, attempt_number, status_code, error, duration_ms, response_body, response_headers)
      select f.delivery_id, f.attempt_number, f.status_code, f.error, f.duration_ms, f.response_body,
             f.response_headers
        from f join recorded on recorded.id = f.delivery_id
    ), health as (${webhookHealthUpdate(healthRows)}
    ), fifo_next as materialized (
      -- A FIFO delivery that ended (succeeded, dead) lets the next of its webhook go.
      -- (Its own event's trace context is in its first job only: this job carries none.)
      select distinct on (n.webhook_id) n.id, n.attempt_count + 1 as attempt, n.tenant_id,
             n.next_attempt_at, null::text as traceparent, f.ord
        from f
        join recorded d on d.id = f.delivery_id and d.fifo_seq is not null
        join deliveries n on n.webhook_id = d.webhook_id and n.fifo_seq > d.fifo_seq
                         and n.fifo_seq is not null and n.status in ('pending', 'failed')
       where f.status in ('succeeded', 'dead')
       order by n.webhook_id, n.fifo_seq
    ), retries as materialized (
      select f.delivery_id, f.attempt_number + 1 as attempt, f.tenant_id, null::int as priority,
             f.next_attempt_at as run_at, f.traceparent, f.ord
        from f join recorded on recorded.id = f.delivery_id
       where f.status = 'failed'
      union all
      -- Not recorded because the delivery changed meanwhile (a resend or recovery started a new
      -- series while this attempt was in flight): its lease is released here, so it needs a job.
      select d.id, d.attempt_count + 1, d.tenant_id, null::int, d.next_attempt_at, f.traceparent, f.ord
        from f join deliveries d on d.id = f.delivery_id
       -- By primary key: a generic plan would otherwise scan the table for pending deliveries.
       where d.id = any (array(select delivery_id from f where delivery_id not in (select id from recorded)))
         and d.status in ('pending', 'failed')
      union all
      select id, attempt, tenant_id, null::int, next_attempt_at, traceparent, ord from fifo_next
    ), ${deliveryJobCtes('retries')}
    select id from recorded where (select count(*) from added_jobs) >= 0
  `.execute(db);
  return new Set(result.rows.map((row) => row.id));
}

/**
 * Gives back leases this process holds without an attempt recorded (the end could not be
 * written, or sending failed before a request), and queues the deliveries again at the same
 * attempt.
 */
export async function releaseLeases(
  db: Kysely<Database>,
  deliveries: readonly Pick<LoadedDelivery, 'id' | 'attempt' | 'tenant_id'>[],
  leaseOwner: string,
): Promise<void> {
  if (deliveries.length === 0) return;
  await db.transaction().execute(async (trx) => {
    await sql`
      delete from delivery_leases
       where delivery_id = any (${deliveries.map((d) => d.id)}::uuid[]) and worker_id = ${leaseOwner}
    `.execute(trx);
    await enqueueDeliveries(
      trx,
      deliveries.map((d) => ({ deliveryId: d.id, attempt: d.attempt, tenantId: d.tenant_id })),
    );
  });
}
