/**
 * One attempt of one delivery — the body of the graphile-worker `deliver` task.
 *
 *   claim the attempt (our row, see delivery-repository) and a tenant in-flight slot → webhook
 *   disabled? pause, no request → tenant at its cap? queue the attempt again shortly → sign and POST (a graceful stop that cannot wait hands the attempt back) → decide (success, retry, dead, 410 pause) → ONE transaction: attempt row,
 *   delivery state, webhook health, and the next attempt's job or the DLQ row → metrics, log.
 *
 * All retries are ours: the task returns normally whatever the receiver did. It throws only for
 * our own faults (database errors); then graphile-worker runs the job again and the re-run
 * reclaims the same attempt.
 *
 * The tenant's in-flight slot (delivery_leases, max_concurrent_deliveries across all workers)
 * is taken with the claim and given back by the statement that records the attempt.
 *
 * Room left for what comes later:
 * - a per-webhook FIFO mode enqueues with graphile-worker's `queue_name` = the webhook id, so
 *   one delivery per webhook runs at a time, in order; the task itself does not change;
 * - payload filters on subscriptions act at ingestion (which deliveries exist), not here.
 */
import type { Kysely } from 'kysely';
import type { Config } from '../config.js';
import type { Database } from '../db/database.js';
import { insertDeadLetter } from '../dlq/dlq-repository.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { buildDeliveryRequest } from './delivery-request.js';
import { unbatchedAttempts, type AttemptBatches } from './attempt-batches.js';
import {
  disableGoneWebhook,
  finishAttempts,
  markWebhookHealth,
  pauseClaimedDelivery,
  type AttemptRecord,
  type ClaimedDelivery,
  type FinalState,
} from './delivery-repository.js';
import { enqueueDeliveries, FAIR_RANK_CAP, type DeliverJobPayload } from './enqueue.js';
import type { AttemptResult, HttpClient } from './http-client.js';
import { decideAfterFailure } from './retry-policy.js';
import type { LocalSlots } from '../tenancy/local-slots.js';

export interface DeliveryEngineDeps {
  config: Pick<Readonly<Config>, 'retryScheduleSeconds' | 'deliveryTimeoutMs'>;
  db: Kysely<Database>;
  logger: Logger;
  metrics: Metrics;
  httpClient: HttpClient;
  /** Who holds this process's delivery leases (a heartbeat-registered id, see worker-heartbeat). */
  leaseOwner: string;
  /** Claims and attempt ends batched across this process's workers; one statement per call without. */
  attempts?: AttemptBatches;
  /** This process's delivery slots, shared fairly between tenants (see tenancy/local-slots). */
  slots?: LocalSlots;
  /** Told when a retry is due soon, so the worker can wake up for it before its next poll. */
  onRetryScheduled?: (runAt: Date) => void;
}

/** What a run of the task did; for logs and tests. */
export type DeliveryOutcome =
  | 'succeeded'
  | 'retry_scheduled'
  | 'dead'
  /** 410 Gone: webhook disabled, delivery paused. */
  | 'gone'
  /** The webhook is disabled: paused without a request. */
  | 'paused'
  /** The job's attempt is not (or no longer) ours to make: nothing done. */
  | 'stale'
  /** The attempt was made but another run of the same job owns it now: nothing written. */
  | 'superseded'
  /** A graceful stop cut the request short; the same attempt is queued again. */
  | 'handed_back'
  /** The tenant is at max_concurrent_deliveries: the same attempt is queued again shortly. */
  | 'throttled'
  | 'invalid_payload';

/** Thrown when a graceful stop cut a request short and it could not be queued again. */
export class AttemptInterruptedError extends Error {
  constructor(deliveryId: string, attempt: number, cause: unknown) {
    super(`delivery ${deliveryId} attempt ${attempt} interrupted by shutdown`, { cause });
    this.name = 'AttemptInterruptedError';
  }
}

class ClaimLostError extends Error {}

/**
 * Longest wait of a fast tenant's job for one of the tenant's slots here (it gives up sooner,
 * as soon as the tenant counts as slow: see tenancy/local-slots).
 */
const FAST_SHARE_WAIT_MS = 50;
/** How long an attempt over its tenant's concurrency cap waits before it tries again. */
const THROTTLE_MIN_MS = 100;
const THROTTLE_JITTER_MS = 200;

export function parseDeliverPayload(raw: unknown): DeliverJobPayload | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const { delivery_id, attempt, tenant_id, traceparent } = raw as Record<string, unknown>;
  if (typeof delivery_id !== 'string' || !/^[0-9a-f-]{36}$/i.test(delivery_id)) return undefined;
  if (typeof attempt !== 'number' || !Number.isInteger(attempt) || attempt < 1) return undefined;
  if (tenant_id !== undefined && typeof tenant_id !== 'string') return undefined;
  if (traceparent !== undefined && typeof traceparent !== 'string') return undefined;
  return {
    delivery_id,
    attempt,
    ...(tenant_id !== undefined ? { tenant_id } : {}),
    ...(traceparent !== undefined ? { traceparent } : {}),
  };
}

/**
 * The same attempt back in the queue: its claim (if any) stays, and the re-run reclaims it.
 * `tenantId` defaults to the job's own.
 */
async function requeueAttempt(
  deps: DeliveryEngineDeps,
  job: DeliverJobPayload,
  options: { priority: number; runAt?: Date; tenantId?: string },
): Promise<void> {
  const tenantId = options.tenantId ?? job.tenant_id;
  await enqueueDeliveries(deps.db, [
    {
      deliveryId: job.delivery_id,
      attempt: job.attempt,
      priority: options.priority,
      ...(options.runAt ? { runAt: options.runAt } : {}),
      ...(tenantId ? { tenantId } : {}),
      ...(job.traceparent ? { traceparent: job.traceparent } : {}),
    },
  ]);
}

/** The same job again, a little later, for a tenant that is at one of its limits. */
async function queueAgainShortly(
  deps: DeliveryEngineDeps,
  job: DeliverJobPayload,
  priority: number,
): Promise<Date> {
  const runAt = new Date(Date.now() + THROTTLE_MIN_MS + Math.random() * THROTTLE_JITTER_MS);
  await requeueAttempt(deps, job, { priority, runAt });
  // Wake the workers when it is due rather than at the next poll.
  deps.onRetryScheduled?.(runAt);
  return runAt;
}

export async function deliverWebhook(
  deps: DeliveryEngineDeps,
  rawPayload: unknown,
  options: { signal?: AbortSignal; priority?: number } = {},
): Promise<DeliveryOutcome> {
  const job = parseDeliverPayload(rawPayload);
  if (!job) {
    deps.logger.error('deliver job with an invalid payload ignored', { payload_type: typeof rawPayload });
    return 'invalid_payload';
  }

  const priority = options.priority ?? 0;
  let release: (() => void) | undefined;
  if (job.tenant_id !== undefined && deps.slots) {
    // A fast tenant at its share: one of its deliveries ends within moments; wait for that slot.
    release =
      deps.slots.tryTake(job.tenant_id) ?? (await deps.slots.waitToTake(job.tenant_id, FAST_SHARE_WAIT_MS));
    if (!release) {
      // This tenant's deliveries are slow and it already has its share of this process's slots
      // (its first jobs here, fetched before any of them ran long): nothing claimed, try later,
      // at the back of the fair order.
      await queueAgainShortly(deps, job, Math.max(priority, FAIR_RANK_CAP));
      deps.metrics.rateLimited.inc({ limit: 'worker_share' });
      return 'throttled';
    }
  }
  try {
    return await deliverClaimed(deps, job, priority, options.signal);
  } finally {
    release?.();
  }
}

async function deliverClaimed(
  deps: DeliveryEngineDeps,
  job: DeliverJobPayload,
  priority: number,
  signal: AbortSignal | undefined,
): Promise<DeliveryOutcome> {
  const attempts = deps.attempts ?? unbatchedAttempts(deps.db, deps.leaseOwner);
  const claim = await attempts.claim({ deliveryId: job.delivery_id, attempt: job.attempt });
  if (!claim) {
    deps.logger.debug('stale deliver job ignored', { delivery_id: job.delivery_id, attempt: job.attempt });
    return 'stale';
  }
  if (!claim.webhook_enabled) {
    if (await pauseClaimedDelivery(deps.db, claim)) {
      deps.logger.info('delivery paused: webhook disabled', logFields(claim, job.attempt));
      return 'paused';
    }
    // Enabled again while we looked: the same attempt goes back in the queue, now.
    await requeueAttempt(deps, job, { priority, tenantId: claim.tenant_id });
    return 'handed_back';
  }
  if (!claim.leased) {
    // Over the tenant's cap: the attempt waits its turn (the claim stays, the re-run reclaims it),
    // at the back of the fair order, where a tenant at its cap belongs.
    const runAt = await queueAgainShortly(deps, job, Math.max(priority, FAIR_RANK_CAP));
    // Its other jobs would be refused too: this process leaves them until then.
    deps.slots?.holdOff(claim.tenant_id, runAt.getTime() - Date.now());
    deps.metrics.rateLimited.inc({ limit: 'concurrent_deliveries' });
    deps.logger.debug(
      'delivery throttled: tenant at max_concurrent_deliveries',
      logFields(claim, job.attempt),
    );
    return 'throttled';
  }

  const result = await sendAttempt(deps, claim, signal);
  if (result.interrupted) {
    // The process is stopping: queue the same attempt again for whichever worker is next (the
    // claim stays, and the new job reclaims it). Should that fail, the throw lets
    // graphile-worker hand the job back instead.
    await requeueAttempt(deps, job, { priority, tenantId: claim.tenant_id }).catch((err: unknown) => {
      throw new AttemptInterruptedError(claim.id, job.attempt, err);
    });
    deps.logger.info('delivery attempt handed back: stopping', logFields(claim, job.attempt));
    return 'handed_back';
  }

  const now = new Date();
  const { state, outcome } = decide(deps, job.attempt, result, now);
  const attempt: AttemptRecord = {
    attemptNumber: job.attempt,
    statusCode: result.statusCode,
    error: result.error,
    durationMs: result.durationMs,
    responseBody: result.responseBody,
    responseHeaders: result.responseHeaders,
  };

  const owned = await commitAttempt(
    deps,
    attempts,
    claim,
    job,
    priority,
    attempt,
    state,
    outcome,
    result.error,
  );
  if (!owned) {
    deps.logger.warn('delivery attempt superseded by another run; result dropped', {
      ...logFields(claim, job.attempt),
      status_code: result.statusCode,
      error: result.error,
    });
    return 'superseded';
  }

  record(deps, claim, job.attempt, result, outcome, now);
  if (state.status === 'failed') deps.onRetryScheduled?.(state.nextAttemptAt);
  return outcome;
}

/**
 * Writes the attempt's end. A success on a healthy webhook is one statement; anything more
 * (webhook health, the next attempt's job, the DLQ row, disabling on 410) commits with it in
 * one transaction. False when the claim was lost: nothing is written.
 */
async function commitAttempt(
  deps: DeliveryEngineDeps,
  attempts: AttemptBatches,
  claim: ClaimedDelivery,
  job: DeliverJobPayload,
  priority: number,
  attempt: AttemptRecord,
  state: FinalState,
  outcome: DeliveryOutcome,
  lastError: string | null,
): Promise<boolean> {
  const healthChanges = outcome === 'succeeded' ? claim.failing_since !== null : claim.failing_since === null;
  if (state.status === 'succeeded' && !healthChanges) {
    return attempts.finish({ claim, attempt, state });
  }
  let dlqFull = false;
  try {
    await deps.db.transaction().execute(async (trx) => {
      const recorded = await finishAttempts(trx, [{ claim, attempt, state }]);
      if (!recorded.has(claim.id)) throw new ClaimLostError();
      if (outcome === 'gone') await disableGoneWebhook(trx, claim.webhook_id, claim.tenant_id, claim.id);
      else if (healthChanges) await markWebhookHealth(trx, claim.webhook_id, outcome === 'succeeded');
      if (state.status === 'failed') {
        await enqueueDeliveries(trx, [
          {
            deliveryId: claim.id,
            attempt: job.attempt + 1,
            runAt: state.nextAttemptAt,
            priority,
            tenantId: claim.tenant_id,
            ...(job.traceparent ? { traceparent: job.traceparent } : {}),
          },
        ]);
      } else if (state.status === 'dead') {
        ({ dlqFull } = await insertDeadLetter(trx, {
          deliveryId: claim.id,
          tenantId: claim.tenant_id,
          webhookId: claim.webhook_id,
          eventId: claim.event_id,
          lastError: lastError ?? 'unknown error',
          attempts: job.attempt,
        }));
      }
    });
    // Recorded all the same; the webhook is paused so that no more of its deliveries die.
    if (dlqFull) deps.metrics.dlqFull.inc();
    return true;
  } catch (err) {
    if (err instanceof ClaimLostError) return false;
    throw err;
  }
}

/** The request itself, made while the delivery holds its tenant's in-flight slot. */
async function sendAttempt(
  deps: DeliveryEngineDeps,
  claim: ClaimedDelivery,
  signal: AbortSignal | undefined,
): Promise<AttemptResult> {
  const request = buildDeliveryRequest({
    deliveryId: claim.id,
    webhook: claim,
    event: { type: claim.event_type, payload: claim.payload, created_at: claim.event_created_at },
    now: new Date(),
  });
  const timeoutMs = claim.timeout_ms ?? deps.config.deliveryTimeoutMs;
  return deps.httpClient.send(request, { timeoutMs, ...(signal ? { signal } : {}) });
}

function decide(
  deps: DeliveryEngineDeps,
  attempt: number,
  result: AttemptResult,
  now: Date,
): { state: FinalState; outcome: DeliveryOutcome } {
  if (result.ok) return { state: { status: 'succeeded' }, outcome: 'succeeded' };
  // A refused destination will be refused again: no point in retrying.
  if (result.permanent) return { state: { status: 'dead' }, outcome: 'dead' };
  if (result.statusCode === 410) return { state: { status: 'paused' }, outcome: 'gone' };
  const decision = decideAfterFailure(
    { attempt, statusCode: result.statusCode, retryAfter: result.responseHeaders?.['retry-after'] ?? null },
    deps.config.retryScheduleSeconds,
    now,
  );
  if (decision.kind === 'dead') return { state: { status: 'dead' }, outcome: 'dead' };
  return {
    state: { status: 'failed', nextAttemptAt: new Date(now.getTime() + decision.delayMs) },
    outcome: 'retry_scheduled',
  };
}

function record(
  deps: DeliveryEngineDeps,
  claim: ClaimedDelivery,
  attempt: number,
  result: AttemptResult,
  outcome: DeliveryOutcome,
  now: Date,
): void {
  const metricOutcome = outcome === 'succeeded' ? 'success' : outcome === 'dead' ? 'dead' : 'failure';
  deps.metrics.deliveries.inc({ outcome: metricOutcome });
  if (!result.permanent)
    deps.metrics.deliveryDuration.observe({ outcome: metricOutcome }, result.durationMs / 1000);
  if (outcome === 'succeeded') {
    deps.metrics.eventToDelivery.observe(
      Math.max(0, now.getTime() - claim.event_created_at.getTime()) / 1000,
    );
  }
  if (outcome === 'retry_scheduled') deps.metrics.retries.inc({ attempt: String(attempt) });

  const fields = {
    ...logFields(claim, attempt),
    outcome,
    status_code: result.statusCode,
    error: result.error,
    duration_ms: result.durationMs,
  };
  if (outcome === 'dead' || outcome === 'gone') deps.logger.warn('delivery attempt', fields);
  else deps.logger.info('delivery attempt', fields);
}

function logFields(claim: ClaimedDelivery, attempt: number) {
  return {
    delivery_id: claim.id,
    webhook_id: claim.webhook_id,
    tenant_id: claim.tenant_id,
    attempt,
  };
}
