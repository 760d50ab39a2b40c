/**
 * The delivery engine's queries. Ownership of an attempt lives in our own row, not in
 * graphile-worker's lock: a job first *claims* its attempt (`claimAttempts`), and every later
 * write checks that claim (`attempt_count`, `status = 'pending'` and the claim's `updated_at`).
 * A job that runs twice, or that finishes after it was taken away from a stalled worker and
 * run again, therefore writes nothing the second time.
 */
import { sql, type Kysely } from 'kysely';
import { writeAudit } from '../audit/audit-repository.js';
import type { Database } from '../db/database.js';
import { enqueueDeliveries } from './enqueue.js';

export interface ClaimedDelivery {
  id: string;
  event_id: string;
  webhook_id: string;
  tenant_id: string;
  /** The claim's `updated_at` as text (microseconds intact); later writes must match it. */
  claim_token: string;
  url: string;
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: Date | null;
  timeout_ms: number | null;
  webhook_enabled: boolean;
  /** As read at the claim; lets a success skip the health update when there is nothing to clear. */
  failing_since: Date | null;
  event_type: string;
  payload: unknown;
  event_created_at: Date;
  /**
   * Whether the claim also took one of the tenant's in-flight slots (delivery_leases). False
   * when the tenant is at max_concurrent_deliveries (or the webhook is disabled): no request.
   */
  leased: boolean;
}

export interface AttemptClaim {
  deliveryId: string;
  attempt: number;
}

/**
 * Takes attempt `attempt` of each delivery: from the previous attempt's end (`pending` with no
 * attempts for a fresh delivery, `failed` with a retry due), or — when a claimed attempt never
 * finished because its worker died or handed it back — from that same attempt (`pending` with
 * attempts made means exactly that). A delivery missing from the answer was stale: the attempt
 * was already made, the delivery succeeded, died, was paused, or was deleted.
 *
 * One statement for the whole batch: the claims, what the requests need (webhook and event),
 * and the tenants' in-flight slots (`acquire_delivery_leases`, max_concurrent_deliveries).
 *
 * Whoever starts a new series (DLQ retry, manual retry) sets `attempt_count = 0, status =
 * 'pending'` and enqueues attempt 1.
 */
export async function claimAttempts(
  db: Kysely<Database>,
  claims: readonly AttemptClaim[],
  leaseOwner: string,
): Promise<Map<string, ClaimedDelivery>> {
  if (claims.length === 0) return new Map();
  const requests = claims.map((c, ord) => ({ delivery_id: c.deliveryId, attempt: c.attempt, ord }));
  const { rows } = await sql<ClaimedDelivery>`-- prepared: claim_attempts
    with requested as materialized (
      select * from json_to_recordset(${JSON.stringify(requests)}::json) as r(delivery_id uuid, attempt int, ord int)
    ), claimed as materialized (
      update deliveries d
         set attempt_count = r.attempt, status = 'pending', updated_at = clock_timestamp()
        from requested r
       -- By primary key whatever the statistics say (a hash join would read the whole table).
       where d.id = any (array(select delivery_id from requested))
         and d.id = r.delivery_id
         and (   (d.attempt_count = r.attempt - 1 and d.status in ('pending', 'failed'))
              or (d.attempt_count = r.attempt and d.status = 'pending'))
      returning d.id, d.event_id, d.webhook_id, d.tenant_id, d.updated_at, r.ord
    ), webhook as materialized (
      select w.* from webhooks w where w.id in (select webhook_id from claimed)
    ), leased as materialized (
      -- The tenants' in-flight slots, for deliveries whose webhook is enabled, in claim order.
      select acquire_delivery_leases(${leaseOwner},
               array(select c.id from claimed c join webhook w on w.id = c.webhook_id where w.enabled order by c.ord),
               array(select c.tenant_id from claimed c join webhook w on w.id = c.webhook_id where w.enabled order by c.ord)
             ) as delivery_id
    )
    select c.id, c.event_id, c.webhook_id, c.tenant_id, c.updated_at::text as claim_token,
           w.url, w.secret, w.previous_secret, w.previous_secret_expires_at, w.timeout_ms,
           w.enabled as webhook_enabled, w.failing_since,
           e.type as event_type, e.payload, e.created_at as event_created_at,
           exists (select 1 from leased l where l.delivery_id = c.id) as leased
      from claimed c
      join webhook w on w.id = c.webhook_id
      join events e on e.id = c.event_id
  `.execute(db);
  return new Map(rows.map((row) => [row.id, row]));
}

/**
 * The webhook is disabled: the delivery waits as `paused`, its attempt not spent, until
 * `resumePausedDeliveries` (on re-enabling) queues it again.
 */
export async function pauseClaimedDelivery(db: Kysely<Database>, claim: ClaimedDelivery): Promise<boolean> {
  // The webhook row is read under a share lock: a re-enable in progress is waited for and seen,
  // so a delivery is never left paused behind a webhook that was enabled meanwhile (its
  // resume would not have found it, as it was not paused yet). False: not paused, the caller
  // queues the attempt again.
  const result = await sql`
    with webhook as (select enabled from webhooks where id = ${claim.webhook_id} for share)
    update deliveries
       set status = 'paused', attempt_count = attempt_count - 1, next_attempt_at = null, updated_at = now()
     where id = ${claim.id} and status = 'pending' and updated_at = ${claim.claim_token}::timestamptz
       and not coalesce((select enabled from webhook), false)
  `.execute(db);
  return Number(result.numAffectedRows ?? 0) > 0;
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

export interface FinishedAttempt {
  claim: Pick<ClaimedDelivery, 'id' | 'claim_token'>;
  attempt: AttemptRecord;
  state: FinalState;
}

/**
 * Attempts' ends: each delivery's new state, its attempt row and its lease given back, in one
 * statement guarded by each claim. Answers the deliveries whose claim was still ours; for the
 * others nothing was written (roll back, if in a transaction).
 */
export async function finishAttempts(
  db: Kysely<Database>,
  finished: readonly FinishedAttempt[],
): Promise<Set<string>> {
  if (finished.length === 0) return new Set();
  const rows = finished.map(({ claim, attempt, state }) => ({
    delivery_id: claim.id,
    claim_token: claim.claim_token,
    status: state.status,
    next_attempt_at: state.status === 'failed' ? state.nextAttemptAt.toISOString() : null,
    attempt_number: attempt.attemptNumber,
    status_code: attempt.statusCode,
    error: attempt.error,
    duration_ms: attempt.durationMs,
    response_body: attempt.responseBody,
    response_headers: attempt.responseHeaders,
  }));
  const result = await sql<{ delivery_id: string }>`-- prepared: finish_attempts
    with f as materialized (
      select * from json_to_recordset(${JSON.stringify(rows)}::json) as f(
        delivery_id uuid, claim_token timestamptz, status text, next_attempt_at timestamptz,
        attempt_number int, status_code int, error text, duration_ms int, response_body text,
        response_headers jsonb)
    ), finished as (
      update deliveries d
         set status = f.status,
             next_attempt_at = f.next_attempt_at,
             last_error = f.error,
             last_status_code = f.status_code,
             succeeded_at = case when f.status = 'succeeded' then now() else d.succeeded_at end,
             updated_at = now()
        from f
       where d.id = any (array(select delivery_id from f))
         and d.id = f.delivery_id
         and d.attempt_count = f.attempt_number
         and d.status = 'pending'
         and d.updated_at = f.claim_token
      returning d.id
    ), released as (
      delete from delivery_leases where delivery_id in (select id from finished)
    )
    insert into delivery_attempts
      (delivery_id, attempt_number, status_code, error, duration_ms, response_body, response_headers)
    select f.delivery_id, f.attempt_number, f.status_code, f.error, f.duration_ms, f.response_body,
           f.response_headers
      from f join finished on finished.id = f.delivery_id
    returning delivery_id
  `.execute(db);
  return new Set(result.rows.map((row) => row.delivery_id));
}

/** `failing_since` marks the start of an unbroken run of failures; a success ends it. */
export async function markWebhookHealth(
  db: Kysely<Database>,
  webhookId: string,
  healthy: boolean,
): Promise<void> {
  // The guards keep the common case (no change) free of row locks on a busy webhook.
  if (healthy) {
    await sql`update webhooks set failing_since = null where id = ${webhookId} and failing_since is not null`.execute(
      db,
    );
  } else {
    await sql`update webhooks set failing_since = now() where id = ${webhookId} and failing_since is null`.execute(
      db,
    );
  }
}

export const GONE_REASON = '410 Gone from endpoint';

/** The endpoint answered 410 Gone: disable the webhook and say why, in the audit log too. */
export async function disableGoneWebhook(
  db: Kysely<Database>,
  webhookId: string,
  tenantId: string,
  deliveryId: string,
): Promise<void> {
  const result = await sql`
    update webhooks
       set enabled = false, disabled_reason = ${GONE_REASON}, disabled_at = now(),
           failing_since = coalesce(failing_since, now()), updated_at = now()
     where id = ${webhookId} and enabled
  `.execute(db);
  if (Number(result.numAffectedRows ?? 0) === 0) return;
  await writeAudit(db, {
    actor: 'system',
    action: 'webhook.disabled',
    objectType: 'webhook',
    objectId: webhookId,
    tenantId,
    requestId: null,
    details: { reason: GONE_REASON, delivery_id: deliveryId },
  });
}

/**
 * Queues again every paused delivery of a webhook, continuing each series where it stopped.
 * Call it in the transaction that re-enables the webhook. One already tried becomes `failed`
 * (its next attempt due now), never `pending`: `pending` with attempts made means "an attempt
 * is in flight" to `claimAttempts`.
 */
export async function resumePausedDeliveries(db: Kysely<Database>, webhookId: string): Promise<number> {
  const { rows } = await sql<{ id: string; attempt_count: number; tenant_id: string }>`
    update deliveries
       set status = case when attempt_count = 0 then 'pending' else 'failed' end,
           next_attempt_at = case when attempt_count = 0 then null else now() end,
           updated_at = now()
     where webhook_id = ${webhookId} and status = 'paused'
    returning id, attempt_count, tenant_id
  `.execute(db);
  await enqueueDeliveries(
    db,
    rows.map((row) => ({ deliveryId: row.id, attempt: row.attempt_count + 1, tenantId: row.tenant_id })),
  );
  return rows.length;
}
