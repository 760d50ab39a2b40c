/**
 * The delivery path, one straight line:
 *
 *   load batch → admit → send → decide → record → report
 *
 * A `deliver` job names one tenant's deliveries. `deliverBatch` waits for room under
 * MAX_IN_FLIGHT, then loads the batch in one statement that also admits it (a lease per
 * delivery, up to the tenant's max_concurrent_deliveries across processes; the rest are queued
 * again shortly and the tenant is held off here meanwhile). The job is done then: the leased
 * deliveries are in flight, each on its own deadline, and each is recorded as soon as its answer
 * comes, many ends in one statement (`recordAttempts`, group-committed across jobs). Requests in
 * flight are therefore not worker slots: a slow endpoint holds its leases, not a job.
 *
 * Should the process die with requests in flight, their leases name it; the stale-worker sweep
 * deletes them and queues the deliveries again (worker-heartbeat). Nothing is lost, and an
 * attempt is recorded once however often it is made (`recordAttempts` checks attempt_count).
 */
import { createGroupCommitter, type GroupCommitter } from '../db/group-commit.js';
import type { Db } from '../db/database.js';
import type { Config } from '../config.js';
import { insertDeadLetters } from '../dlq/dlq-repository.js';
import {
  emitOperationalEvent,
  emitOperationalEvents,
  isOperationalType,
} from '../events/operational-events.js';
import { DLQ_FULL_REASON, disableWebhook, GONE_REASON } from '../webhooks/webhook-state.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { inSpanFromTraceparent } from '../observability/trace-context.js';
import { decide, type AttemptOutcome } from './decide.js';
import { buildDeliveryRequest } from './delivery-request.js';
import {
  loadBatch,
  recordAttempts,
  releaseLeases,
  type AttemptEnd,
  type LoadedBatch,
  type LoadedDelivery,
} from './delivery-repository.js';
import { enqueueDeliveries, parseDeliverPayload } from './enqueue.js';
import { createSigningKeys } from './signing-keys.js';
import type { SigningKey } from './signing.js';
import type { SecretBox } from '../secrets/secret-box.js';
import { attemptResult, type AttemptResult, type HttpClient } from './http-client.js';

export interface DeliveryEngineDeps {
  config: Pick<Readonly<Config>, 'retryScheduleSeconds' | 'deliveryTimeoutMs' | 'maxInFlight'>;
  db: Db;
  logger: Logger;
  metrics: Metrics;
  httpClient: HttpClient;
  /** Decrypts the webhooks' signing secrets. */
  secrets: SecretBox;
  /** Who holds this process's delivery leases (a heartbeat-registered id, see worker-heartbeat). */
  leaseOwner: string;
  /** Told when a job becomes due soon, so the worker can wake up for it before its next poll. */
  onJobDue?: (runAt: Date) => void;
}

/** What a job did; for tests and the job's span. */
export interface BatchOutcome {
  /** Deliveries sent (their ends are recorded as they come). */
  sent: number;
  /** Over the tenant's concurrency cap: queued again shortly. */
  deferred: number;
  /** Beyond this process's room (MAX_IN_FLIGHT), or the process is stopping: queued again now. */
  requeued: number;
  /** Not due at the attempt named, paused, or in flight elsewhere: nothing to do here. */
  skipped: number;
}

/**
 * New deliveries handed to the engine by ingestion in the same process (ROLE=all): leased in the
 * statement that stores them (no job, no fetch, no load), sent once it has committed.
 */
export interface DirectDispatch {
  /** Who the leases are taken for. */
  leaseOwner: string;
  /** Takes room for up to `max` requests now, without waiting; how many (0 when full or stopping). */
  reserve(max: number): number;
  /** Gives back room reserved and not used. */
  release(n: number): void;
  /** Sends deliveries leased with reserved room; each gives its room back when recorded. */
  send(deliveries: LoadedDelivery[]): void;
}

export interface DeliveryEngine extends DirectDispatch {
  /** The `deliver` task: admits and sends one job's batch; resolves once its requests are under way. */
  deliverBatch(payload: unknown): Promise<BatchOutcome>;
  /** Tenants whose jobs this process should leave in the queue for now (at their concurrency cap). */
  heldOffTenants(): string[];
  /** Requests in flight or being recorded. */
  inFlight(): number;
  /** Resolves when nothing is in flight. */
  idle(): Promise<void>;
  /** Takes no more batches: a job waiting for room puts its deliveries back in the queue. */
  beginStop(): void;
  /**
   * Graceful stop: waits up to `graceMs` for requests in flight to end and be recorded, then cuts
   * the rest short (recorded as interrupted, their next attempt due at once).
   */
  stop(graceMs: number): Promise<void>;
}

/** Most attempt ends written by one statement. */
const MAX_RECORD_BATCH = 500;
/** Back-off while an attempt's end cannot be recorded (the database is away). */
const RECORD_RETRY_MIN_MS = 200;
const RECORD_RETRY_MAX_MS = 5000;

export function createDeliveryEngine(deps: DeliveryEngineDeps): DeliveryEngine {
  const { db, logger, metrics, leaseOwner } = deps;
  const signingKeys = createSigningKeys(deps.secrets);
  const idleWaiters: (() => void)[] = [];
  const room = createRoom(deps.config.maxInFlight, () => {
    for (const wake of idleWaiters.splice(0)) wake();
  });
  const idle = () =>
    room.used() === 0 ? Promise.resolve() : new Promise<void>((resolve) => idleWaiters.push(resolve));
  const stopController = new AbortController();
  let stopped = false;
  /** Tenant → until when its jobs are left in the queue here. */
  const heldOff = new Map<string, number>();

  const recorder: GroupCommitter<AttemptEnd, boolean> = createGroupCommitter({
    maxBatchSize: MAX_RECORD_BATCH,
    maxWaitMs: 0,
    maxConcurrentBatches: 2,
    async commitBatch(ends) {
      const recorded = await record(ends);
      return ends.map((end) => ({ status: 'fulfilled', value: recorded.has(end.delivery.id) }));
    },
    commitOne: async (end) => (await record([end])).has(end.delivery.id),
  });

  /**
   * One statement for the common ends. Dead letters and 410s commit with it in a transaction:
   * the dead letters in one statement and their `hookrelay.delivery.dead` events in another,
   * however many died; a webhook paused (410, or its tenant's DLQ full) costs a few of its own.
   */
  async function record(ends: AttemptEnd[]): Promise<Set<string>> {
    if (!ends.some((end) => end.state.status === 'dead' || end.state.status === 'paused')) {
      return recordAttempts(db, ends, leaseOwner);
    }
    let dlqFull = 0;
    const recorded = await db.transaction().execute(async (trx) => {
      const written = await recordAttempts(trx, ends, leaseOwner);
      const mine = ends.filter((end) => written.has(end.delivery.id));
      for (const { delivery } of mine.filter((end) => end.state.status === 'paused')) {
        await disableWebhook(trx, {
          webhookId: delivery.webhook_id,
          tenantId: delivery.tenant_id,
          reason: GONE_REASON,
          details: { delivery_id: delivery.id },
          failing: true,
        });
      }
      const dead = mine.filter((end) => end.state.status === 'dead');
      const outcomes = await insertDeadLetters(
        trx,
        dead.map(({ delivery, attempt }) => ({
          deliveryId: delivery.id,
          tenantId: delivery.tenant_id,
          webhookId: delivery.webhook_id,
          eventId: delivery.event_id,
          lastError: attempt.error ?? 'unknown error',
          attempts: attempt.attemptNumber,
        })),
      );
      await emitOperationalEvents(
        trx,
        // An operational event's own death is not announced: no loop.
        dead
          .filter(({ delivery }) => !isOperationalType(delivery.event_type))
          .map(({ delivery, attempt }) => ({
            tenantId: delivery.tenant_id,
            type: 'hookrelay.delivery.dead',
            payload: {
              delivery_id: delivery.id,
              event_id: delivery.event_id,
              webhook_id: delivery.webhook_id,
              event_type: delivery.event_type,
              last_error: attempt.error ?? 'unknown error',
              attempts: attempt.attemptNumber,
            },
          })),
      );
      // A full DLQ pauses the webhook of each letter recorded while it was full (once per webhook).
      const pausedWebhooks = new Set<string>();
      for (const [i, outcome] of outcomes.entries()) {
        if (!outcome.dlqFull) continue;
        dlqFull++;
        const { delivery } = dead[i]!;
        if (pausedWebhooks.has(delivery.webhook_id)) continue;
        pausedWebhooks.add(delivery.webhook_id);
        const disabled = await disableWebhook(trx, {
          webhookId: delivery.webhook_id,
          tenantId: delivery.tenant_id,
          reason: DLQ_FULL_REASON,
          details: { delivery_id: delivery.id, max_dlq_size: outcome.maxSize },
        });
        if (disabled) {
          await emitOperationalEvent(trx, delivery.tenant_id, 'hookrelay.dlq.full', {
            webhook_id: delivery.webhook_id,
            delivery_id: delivery.id,
            max_dlq_size: outcome.maxSize,
          });
        }
      }
      return written;
    });
    // Recorded all the same; the webhook is paused so that no more of its deliveries die.
    if (dlqFull > 0) metrics.dlqFull.inc(dlqFull);
    return recorded;
  }

  /** Records an end, trying again while the database is away; false if it was not ours to record. */
  async function recordEnd(end: AttemptEnd): Promise<boolean | undefined> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await recorder.submit(end);
      } catch (err) {
        if (!isTransient(err)) {
          // The database refuses this end itself: trying again cannot help. Give the lease back
          // and queue the attempt again rather than hold the lease for good.
          logger.error('attempt end refused by the database; queued again', {
            ...logFields(end.delivery, end.attempt.attemptNumber),
            err: errorText(err),
            pg_code: (err as { code?: unknown }).code,
          });
          await giveBack({
            id: end.delivery.id,
            attempt: end.attempt.attemptNumber,
            tenant_id: end.delivery.tenant_id,
          });
          return undefined;
        }
        if (stopped) {
          // The lease stays: the stale-worker sweep queues the delivery again.
          logger.error('attempt end not recorded: stopping', {
            ...logFields(end.delivery, end.attempt.attemptNumber),
            err: errorText(err),
          });
          return undefined;
        }
        const delayMs = Math.min(RECORD_RETRY_MAX_MS, RECORD_RETRY_MIN_MS * 2 ** attempt);
        logger.warn('attempt end not recorded yet; trying again', {
          ...logFields(end.delivery, end.attempt.attemptNumber),
          err: errorText(err),
          retry_in_ms: delayMs,
        });
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
    }
  }

  /** send → decide → record → report, for one leased delivery. */
  async function deliverOne(delivery: LoadedDelivery): Promise<void> {
    const attributes = {
      'hookrelay.delivery_id': delivery.id,
      'hookrelay.attempt': delivery.attempt,
    };
    await inSpanFromTraceparent(
      'deliver webhook',
      delivery.traceparent ?? undefined,
      attributes,
      async (span) => {
        const result = await request(delivery);
        const now = new Date();
        const { state, outcome } = decide(result, delivery.attempt, deps.config.retryScheduleSeconds, now);
        const end: AttemptEnd = {
          delivery,
          attempt: {
            attemptNumber: delivery.attempt,
            statusCode: result.statusCode,
            error: result.error,
            durationMs: result.durationMs,
            responseBody: result.responseBody,
            responseHeaders: result.responseHeaders,
          },
          state,
          ...healthChange(delivery, outcome),
        };
        const recorded = await recordEnd(end);
        heldOff.delete(delivery.tenant_id);
        span.setAttribute('hookrelay.outcome', recorded === false ? 'superseded' : outcome);
        if (recorded === false) {
          logger.warn('delivery attempt already recorded by another run; result dropped', {
            ...logFields(delivery, delivery.attempt),
            status_code: result.statusCode,
            error: result.error,
          });
          return;
        }
        if (result.interrupted) {
          logger.info('delivery attempt interrupted by shutdown; its next attempt is queued now', {
            ...logFields(delivery, delivery.attempt),
            duration_ms: result.durationMs,
          });
        }
        report(delivery, result, outcome, now);
        if (state.status === 'failed') deps.onJobDue?.(state.nextAttemptAt);
      },
    );
  }

  function request(delivery: LoadedDelivery): Promise<AttemptResult> {
    const now = new Date();
    let keys: SigningKey[];
    try {
      keys = signingKeys.activeKeys(delivery, now);
    } catch (err) {
      // Never sign with garbage: the attempt fails, unsent, and is retried on the schedule. The
      // key ids involved are for the operator's log, not for the tenant's attempt record.
      logger.error('delivery not signed: its secret does not decrypt (SECRETS_KEY/SECRETS_KEYS)', {
        ...logFields(delivery, delivery.attempt),
        err: errorText(err),
      });
      return Promise.resolve(
        attemptResult({
          error: "not sent: the service cannot decrypt this webhook's signing secret",
          durationMs: 0,
        }),
      );
    }
    const request = buildDeliveryRequest({
      deliveryId: delivery.id,
      webhook: { url: delivery.url, keys },
      event: { type: delivery.event_type, payload: delivery.payload, created_at: delivery.event_created_at },
      now,
    });
    const timeoutMs = delivery.timeout_ms ?? deps.config.deliveryTimeoutMs;
    return deps.httpClient.send(request, { timeoutMs, signal: stopController.signal });
  }

  function report(delivery: LoadedDelivery, result: AttemptResult, outcome: AttemptOutcome, now: Date): void {
    const metricOutcome = outcome === 'succeeded' ? 'success' : outcome === 'dead' ? 'dead' : 'failure';
    metrics.deliveries.inc({ outcome: metricOutcome });
    if (!result.permanent)
      metrics.deliveryDuration.observe({ outcome: metricOutcome }, result.durationMs / 1000);
    if (outcome === 'succeeded') {
      metrics.eventToDelivery.observe(
        Math.max(0, now.getTime() - delivery.event_created_at.getTime()) / 1000,
      );
    }
    if (outcome === 'retry_scheduled') metrics.retries.inc({ attempt: String(delivery.attempt) });
    const fields = {
      ...logFields(delivery, delivery.attempt),
      outcome,
      status_code: result.statusCode,
      error: result.error,
      duration_ms: result.durationMs,
    };
    if (outcome === 'dead' || outcome === 'gone') logger.warn('delivery attempt', fields);
    else logger.info('delivery attempt', fields);
  }

  /** Best effort: the lease back and the attempt queued again (else the stale-worker sweep does it when this process stops). */
  async function giveBack(delivery: Pick<LoadedDelivery, 'id' | 'attempt' | 'tenant_id'>): Promise<void> {
    await releaseLeases(db, [delivery], leaseOwner).catch((err: unknown) =>
      logger.error('lease not given back', { delivery_id: delivery.id, err: errorText(err) }),
    );
  }

  /** deliverOne for each, each giving back its room when done. */
  function sendAll(deliveries: LoadedDelivery[]): void {
    for (const delivery of deliveries) {
      deliverOne(delivery)
        .catch(async (err: unknown) => {
          logger.error('delivery failed unexpectedly; queued again', {
            ...logFields(delivery, delivery.attempt),
            err: errorText(err),
          });
          await giveBack(delivery);
        })
        .finally(() => room.release(1));
    }
  }

  return {
    leaseOwner,
    reserve: (max) => room.tryTake(max),
    release: (n) => room.release(n),
    send: sendAll,

    async deliverBatch(payload) {
      const job = parseDeliverPayload(payload);
      if (!job) {
        logger.error('deliver job with an invalid payload ignored', { payload_type: typeof payload });
        return { sent: 0, deferred: 0, requeued: 0, skipped: 0 };
      }
      const wanted = await room.take(job.deliveries.length);
      if (wanted === 0) {
        // Stopping: this job's deliveries go back to the queue for another process (or the next start).
        await enqueueDeliveries(
          db,
          job.deliveries.map((d) => ({
            deliveryId: d.id,
            attempt: d.attempt,
            tenantId: job.tenant_id || undefined,
            ...(d.traceparent ? { traceparent: d.traceparent } : {}),
          })),
        );
        return { sent: 0, deferred: 0, requeued: job.deliveries.length, skipped: 0 };
      }
      let batch: LoadedBatch | undefined;
      try {
        batch = await loadBatch(db, job.deliveries, leaseOwner, wanted);
      } finally {
        room.release(wanted - (batch?.leased.length ?? 0));
      }
      const { leased, deferred, requeued } = batch;
      if (batch.deferredUntil) {
        // Its other jobs would be deferred too: this process leaves them until then, or until
        // one of the tenant's deliveries here ends.
        heldOff.set(job.tenant_id, batch.deferredUntil.getTime());
        deps.onJobDue?.(batch.deferredUntil);
        metrics.rateLimited.inc({ limit: 'concurrent_deliveries' }, deferred);
      }
      sendAll(leased);
      return {
        sent: leased.length,
        deferred,
        requeued,
        skipped: job.deliveries.length - leased.length - deferred - requeued,
      };
    },

    heldOffTenants() {
      if (heldOff.size === 0) return [];
      const now = Date.now();
      for (const [tenant, until] of heldOff) if (until <= now) heldOff.delete(tenant);
      return [...heldOff.keys()];
    },

    inFlight: () => room.used(),

    idle,

    beginStop() {
      room.close();
    },

    async stop(graceMs) {
      room.close();
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, graceMs);
      });
      await Promise.race([idle(), graceOver]);
      clearTimeout(timer);
      if (room.used() > 0) {
        logger.info('stopping: cutting requests in flight short', { in_flight: room.used() });
        stopController.abort();
      }
      // Ends of cut-short requests are recorded; give that a moment, then stop retrying.
      await Promise.race([idle(), new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
      stopped = true;
    },
  };
}

/** The webhook's health after this attempt, when it changes (`failing_since` as loaded). */
function healthChange(delivery: LoadedDelivery, outcome: AttemptOutcome): Pick<AttemptEnd, 'health'> {
  if (outcome === 'succeeded') return delivery.failing_since !== null ? { health: 'healthy' } : {};
  // 410 Gone: disabling the webhook sets failing_since itself.
  if (outcome === 'gone') return {};
  return delivery.failing_since === null ? { health: 'failing' } : {};
}

/**
 * MAX_IN_FLIGHT: requests a process keeps open at once, over all its jobs. A job takes room for
 * its whole batch, or at least a quarter of MAX_IN_FLIGHT of it, waiting until that much is
 * free, in arrival order; it loads what it got and gives back what it did not lease, and the rest
 * of its batch goes back to the queue. A job granted whatever was free (once one request ended,
 * one slot) would load its batch, lease one delivery and queue the rest again, over and over
 * while a backlog drains at capacity. Once closed, takers get 0.
 */
interface Room {
  /** At most `n`, and at least `n` or a quarter of the room, once that much is free; 0 when closed. */
  take(n: number): Promise<number>;
  /** Up to `n` now, without waiting (0 while others wait or once closed). */
  tryTake(n: number): number;
  release(n: number): void;
  used(): number;
  close(): void;
}

function createRoom(max: number, onIdle: () => void): Room {
  let used = 0;
  let closed = false;
  const waiting: { n: number; resolve(taken: number): void }[] = [];
  const grant = (n: number): number => {
    const taken = Math.max(0, Math.min(n, max - used));
    used += taken;
    return taken;
  };
  /** Whether a job of `n` may start now: room for all of it, or for a quarter of the room. */
  const fits = (n: number): boolean => max - used >= Math.min(n, Math.max(1, Math.floor(max / 4)));
  return {
    take(n) {
      if (closed) return Promise.resolve(0);
      if (waiting.length === 0 && fits(n)) return Promise.resolve(grant(n));
      return new Promise<number>((resolve) => waiting.push({ n, resolve }));
    },
    tryTake(n) {
      if (closed || waiting.length > 0) return 0;
      return grant(n);
    },
    release(n) {
      if (n === 0) return;
      used -= n;
      while (waiting.length > 0 && fits(waiting[0]!.n)) {
        const next = waiting.shift()!;
        next.resolve(grant(next.n));
      }
      if (used === 0) onIdle();
    },
    used: () => used,
    close() {
      closed = true;
      for (const waiter of waiting.splice(0)) waiter.resolve(0);
    },
  };
}

function logFields(delivery: Pick<LoadedDelivery, 'id' | 'webhook_id' | 'tenant_id'>, attempt: number) {
  return {
    delivery_id: delivery.id,
    webhook_id: delivery.webhook_id,
    tenant_id: delivery.tenant_id,
    attempt,
  };
}

/**
 * Whether a failed statement may succeed if tried again: the connection or the server went away,
 * or a conflict with another transaction. Data, constraint and syntax errors will not.
 */
function isTransient(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  if (typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code)) return true;
  return ['08', '40', '53', '55', '57', '58'].includes(code.slice(0, 2));
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
