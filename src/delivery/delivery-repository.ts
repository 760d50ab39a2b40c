/**
 * The delivery engine's queries. Ownership of an attempt lives in our own row, not in
 * graphile-worker's lock: a job first *claims* its attempt (`claimAttempt`), and every later
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

/**
 * Takes attempt `attempt` of a delivery: from the previous attempt's end (`pending` with no
 * attempts for a fresh delivery, `failed` with a retry due), or — when a claimed attempt never
 * finished because its worker died or handed it back — from that same attempt (`pending` with
 * attempts made means exactly that). Undefined when the job is stale: the attempt was already
 * made, the delivery succeeded, died, was paused, or was deleted.
 *
 * Whoever starts a new series (DLQ retry, manual retry) sets `attempt_count = 0, status =
 * 'pending'` and enqueues attempt 1.
 */
export async function claimAttempt(
  db: Kysely<Database>,
  deliveryId: string,
  attempt: number,
  leaseOwner: string,
): Promise<ClaimedDelivery | undefined> {
  const { rows } = await sql<ClaimedDelivery>`
    with claimed as (
      update deliveries
         set attempt_count = ${attempt}, status = 'pending', updated_at = clock_timestamp()
       where id = ${deliveryId}
         and (   (attempt_count = ${attempt} - 1 and status in ('pending', 'failed'))
              or (attempt_count = ${attempt} and status = 'pending'))
      returning id, event_id, webhook_id, tenant_id, updated_at
    )
    select c.id, c.event_id, c.webhook_id, c.tenant_id, c.updated_at::text as claim_token,
           w.url, w.secret, w.previous_secret, w.previous_secret_expires_at, w.timeout_ms,
           w.enabled as webhook_enabled, w.failing_since,
           e.type as event_type, e.payload, e.created_at as event_created_at,
           -- The tenant's in-flight slot (max_concurrent_deliveries), taken in the same round trip.
           case when w.enabled then acquire_delivery_lease(c.tenant_id, c.id, ${leaseOwner}) else false end as leased
      from claimed c
      join webhooks w on w.id = c.webhook_id
      join events e on e.id = c.event_id
  `.execute(db);
  return rows[0];
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

/**
 * The attempt's end: the delivery's new state and the attempt row, in one statement guarded by
 * the claim. False when the claim is no longer ours (nothing was written; roll back).
 */
export async function finishAttempt(
  db: Kysely<Database>,
  claim: ClaimedDelivery,
  attempt: AttemptRecord,
  state: FinalState,
): Promise<boolean> {
  const nextAttemptAt = state.status === 'failed' ? state.nextAttemptAt : null;
  const { rows } = await sql<{ recorded: number }>`
    with finished as (
      update deliveries
         set status = ${state.status},
             next_attempt_at = ${nextAttemptAt},
             last_error = ${attempt.error},
             last_status_code = ${attempt.statusCode},
             succeeded_at = case when ${state.status} = 'succeeded' then now() else succeeded_at end,
             updated_at = now()
       where id = ${claim.id}
         and attempt_count = ${attempt.attemptNumber}
         and status = 'pending'
         and updated_at = ${claim.claim_token}::timestamptz
      returning id
    ), released as (
      delete from delivery_leases where delivery_id = (select id from finished)
    ), recorded as (
      insert into delivery_attempts
        (delivery_id, attempt_number, status_code, error, duration_ms, response_body, response_headers)
      select id, ${attempt.attemptNumber}, ${attempt.statusCode}, ${attempt.error}, ${attempt.durationMs},
             ${attempt.responseBody},
             ${attempt.responseHeaders === null ? null : JSON.stringify(attempt.responseHeaders)}::jsonb
        from finished
      returning 1
    )
    select count(*)::int as recorded from recorded
  `.execute(db);
  return rows[0]!.recorded > 0;
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
 * is in flight" to `claimAttempt`.
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
