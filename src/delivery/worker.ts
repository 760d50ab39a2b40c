/**
 * The delivery side of a process: a graphile-worker runner whose `deliver` task makes one
 * attempt of one delivery (see deliver-webhook). `NUM_WORKERS` is its concurrency.
 *
 * graphile-worker wakes on LISTEN/NOTIFY when jobs are added and polls every `POLL_INTERVAL_MS`
 * for jobs that became due. A retry due sooner than a few polls away gets a wake-up NOTIFY at
 * its time, so short delays are kept to within milliseconds rather than a poll interval.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter, setMaxListeners } from 'node:events';
import os from 'node:os';
import {
  Logger as WorkerLogger,
  run,
  type Runner,
  type Task,
  type Worker,
  type WorkerEvents,
} from 'graphile-worker';
import { sql } from 'kysely';
import type pg from 'pg';
import type { Config } from '../config.js';
import type { Db } from '../db/database.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { inSpanFromTraceparent } from '../observability/trace-context.js';
import { deliverWebhook, parseDeliverPayload, type DeliveryEngineDeps } from './deliver-webhook.js';
import { createAttemptBatches } from './attempt-batches.js';
import { DELIVER_TASK, tenantFlag } from './enqueue.js';
import { createHttpClient } from './http-client.js';
import { startHeartbeat, type Heartbeat } from './worker-heartbeat.js';
import { createLocalSlots } from '../tenancy/local-slots.js';

export interface WorkerDeps {
  config: Readonly<Config>;
  db: Db;
  pool: pg.Pool;
  logger: Logger;
  metrics: Metrics;
}

export interface DeliveryWorker {
  /**
   * The ids graphile-worker writes into `locked_by` for this process's jobs: the pool's (the
   * local queue locks batches in its name) and each worker's. A heartbeat naming them lets
   * another process release this one's jobs should it die.
   */
  lockOwnerIds(): string[];
  /** Takes no new jobs, lets running ones finish (or hands them back), then resolves. */
  stop(): Promise<void>;
}

const POLL_INTERVAL_MS = 1000;
/** Retries due within this long get a wake-up at their time instead of waiting for a poll. */
const WAKE_HORIZON_MS = 10_000;
/** Wake-ups are coalesced to this granularity: at most one NOTIFY per slot per process. */
const WAKE_SLOT_MS = 50;
/** Back-off between attempts to replace a failed runner (the database is away). */
const RESTART_MIN_DELAY_MS = 500;
const RESTART_MAX_DELAY_MS = 5000;
/** How long a failed runner's attempts may take to end: the longest request timeout, and some. */
const RETIRED_ATTEMPTS_WAIT_MS = 35_000;

export async function startDeliveryWorker(deps: WorkerDeps): Promise<DeliveryWorker> {
  const concurrency = Math.max(1, deps.config.numWorkers);
  const httpClient = createHttpClient({
    allowlist: deps.config.ssrfAllowlist,
    onBlocked: (stage) => deps.metrics.ssrfBlocks.inc({ stage }),
  });
  const wakeUps = createWakeUps(deps);
  // Owner of this process's delivery leases; heartbeat-registered with graphile-worker's ids.
  const leaseOwner = `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const slots = createLocalSlots(concurrency);
  const engine: DeliveryEngineDeps = {
    leaseOwner,
    attempts: createAttemptBatches(deps.db, leaseOwner),
    slots,
    config: deps.config,
    db: deps.db,
    logger: deps.logger,
    metrics: deps.metrics,
    httpClient,
    onRetryScheduled: wakeUps.schedule,
  };
  const deliver: Task = async (payload, helpers) => {
    // One span per attempt, a child of the request that queued it (the payload's traceparent):
    // its queries and the outbound request join the same trace. (A claim or finish statement
    // shared by several attempts is traced under the attempt whose call opened the batch.)
    const job = parseDeliverPayload(payload);
    const attributes = {
      'hookrelay.delivery_id': job?.delivery_id ?? '',
      'hookrelay.attempt': job?.attempt ?? 0,
      'graphile_worker.job_id': helpers.job.id,
    };
    await inSpanFromTraceparent('deliver webhook', job?.traceparent, attributes, async (span) => {
      // helpers.abortSignal fires when a graceful stop has waited `gracefulShutdownAbortTimeout`:
      // a request still running then is cut short and its job handed back. It is the pool's, one
      // for all workers: each request in flight listens to it.
      setMaxListeners(concurrency + 10, helpers.abortSignal);
      const outcome = await deliverWebhook(engine, payload, {
        signal: helpers.abortSignal,
        priority: helpers.job.priority,
      });
      span.setAttribute('hookrelay.outcome', outcome);
    });
  };

  /**
   * One graphile-worker runner and what belongs to it. graphile-worker 0.17 gives up on a pool
   * that cannot record a job's end (the database went away while completing or failing a job:
   * "queue is in an inconsistent state"); the pool then shuts down, and that shutdown can hang
   * for good (its completion batcher never drains). The process would live on, heartbeat and
   * all, taking no jobs. Such a runner is retired instead: its ids leave the heartbeat, its
   * running attempts end, what it still holds locked is released, and a new runner takes over
   * as soon as the database answers. A late write by an old attempt is refused by our claim.
   */
  interface Generation {
    runner: Runner | undefined;
    /** Its pool's and workers' ids: what graphile-worker writes in `locked_by` for it. */
    ids: Set<string>;
    /** The attempts it is running now. */
    running: Set<Promise<unknown>>;
    retired: boolean;
  }
  const newGeneration = (): Generation => ({
    runner: undefined,
    ids: new Set(),
    running: new Set(),
    retired: false,
  });
  let current = newGeneration();
  let stopping = false;
  let replacing: Promise<void> | undefined;
  const backOff = createPause();

  const events: WorkerEvents = new EventEmitter();
  // Fetches under way: asked for their forbidden flags, job not started yet (see `forbiddenFlags`).
  let fetching = 0;
  const fetchEnded = () => {
    fetching = Math.max(0, fetching - 1);
  };
  events.on('job:start', fetchEnded);
  events.on('worker:getJob:empty', fetchEnded);
  events.on('worker:getJob:error', fetchEnded);
  events.on('pool:create', ({ workerPool }) => current.ids.add(workerPool.id));
  // With the local queue on, graphile-worker hands a new job's NOTIFY to the local queue only;
  // but while some tenant is blocked, workers fetch past the local queue (forbiddenFlags) and
  // would sleep until their next poll. Such a NOTIFY wakes idle workers here as well.
  const liveWorkers = new Set<Worker>();
  events.on('worker:create', ({ worker }) => {
    current.ids.add(worker.workerId);
    liveWorkers.add(worker);
  });
  events.on('worker:release', ({ worker }) => liveWorkers.delete(worker));
  events.on('pool:listen:notification', ({ message }) => {
    if (message.channel !== 'jobs:insert' || deps.config.workerLocalQueueSize === 0) return;
    if (slots.blockedTenants().length === 0) return;
    let wanted = notifiedJobCount(message.payload);
    for (const worker of liveWorkers) if (worker.nudge() && --wanted <= 0) break;
  });
  events.on('pool:fatalError', ({ workerPool, error }) => {
    if (current.ids.has(workerPool.id)) retire(current, errorText(error));
  });
  events.on('worker:fatalError', ({ worker, error }) => {
    if (current.ids.has(worker.workerId)) retire(current, errorText(error));
  });

  const taskOf =
    (generation: Generation): Task =>
    async (payload, helpers) => {
      const attempt = Promise.resolve(deliver(payload, helpers));
      generation.running.add(attempt);
      try {
        await attempt;
      } finally {
        generation.running.delete(attempt);
      }
    };

  const startRunner = (generation: Generation) => {
    // A retired runner's fetches never end: the count starts again with the new one.
    fetching = 0;
    return run({
      pgPool: deps.pool,
      concurrency,
      noHandleSignals: true,
      pollInterval: POLL_INTERVAL_MS,
      parsedCronItems: [],
      logger: graphileLogger(deps.logger),
      taskList: { [DELIVER_TASK]: taskOf(generation) },
      gracefulShutdownAbortTimeout: deps.config.shutdownTimeoutMs,
      events,
      // Jobs of tenants that cannot run here now are left in the queue for others (and later),
      // instead of being taken, refused and queued again. Null (most of the time) keeps the
      // local queue in use; graphile-worker fetches one job at a time while it is not null.
      // graphile-worker calls this right before each fetch, and each fetch ends in exactly one
      // of job:start, getJob:empty, getJob:error: fetches under way count against every slow
      // tenant's share, so two workers fetching at once cannot both bring the job that fills it.
      forbiddenFlags: () => {
        const blocked = slots.blockedTenants(fetching);
        fetching++;
        return blocked.length > 0 ? blocked.map(tenantFlag) : null;
      },
      preset: {
        worker: {
          // A local queue locks a batch of due jobs for the whole pool in one query: fewer
          // queries, but the batch is taken in claim order before anyone looks at it, so a
          // throttled tenant's jobs in it delay everyone else's. Off unless configured (for a
          // deployment with one tenant, or with tenants that never hit their limits).
          // While some tenant is blocked here (forbiddenFlags), workers fetch past the local
          // queue; what it holds goes back to the table after `ttl` rather than waiting there.
          localQueue: {
            size: deps.config.workerLocalQueueSize > 0 ? deps.config.workerLocalQueueSize : -1,
            ttl: 2000,
          },
          // Completions are batched into one statement; a job run again is harmless (our claim).
          completeJobBatchDelay: 0,
          failJobBatchDelay: 0,
        },
      },
    });
  };

  const supervise = (generation: Generation) => {
    generation.runner!.promise.then(
      () => retire(generation, 'runner ended'),
      (err: unknown) => retire(generation, errorText(err)),
    );
  };

  function retire(generation: Generation, reason: string): void {
    if (stopping || generation.retired || generation !== current) return;
    generation.retired = true;
    current = newGeneration();
    deps.logger.error('delivery runner failed; replacing it', { reason });
    replacing = replace(generation);
  }

  async function replace(old: Generation): Promise<void> {
    // Ends what the old runner runs beside its pool (its LISTEN client), without waiting for the pool.
    old.runner?.stop().catch(() => undefined);
    await Promise.race([Promise.allSettled([...old.running]), backOff.wait(RETIRED_ATTEMPTS_WAIT_MS)]);
    for (let attempt = 0; !stopping; attempt++) {
      const next = current;
      try {
        await sql`select graphile_worker.force_unlock_workers(${[...old.ids]}::text[])`.execute(deps.db);
        next.runner = await startRunner(next);
        if (stopping) return;
        supervise(next);
        deps.logger.warn('delivery runner replaced', { released_worker_ids: [...old.ids] });
        return;
      } catch (err) {
        // Whatever a half-started runner locked is released with the old runner's jobs.
        for (const id of next.ids) old.ids.add(id);
        next.ids.clear();
        const delayMs = Math.min(RESTART_MAX_DELAY_MS, RESTART_MIN_DELAY_MS * 2 ** attempt);
        deps.logger.warn('delivery runner not replaced yet; trying again', {
          err: errorText(err),
          retry_in_ms: delayMs,
        });
        await backOff.wait(delayMs);
      }
    }
  }

  let heartbeat: Heartbeat | undefined;
  try {
    current.runner = await startRunner(current);
    supervise(current);
    heartbeat = await startHeartbeat({
      db: deps.db,
      workerIds: () => [leaseOwner, ...current.ids],
      staleAfterMs: deps.config.workerStaleAfterMs,
      logger: deps.logger,
    });
  } catch (err) {
    wakeUps.stop();
    httpClient.close();
    throw err;
  }

  return {
    lockOwnerIds: () => [...current.ids],
    async stop() {
      stopping = true;
      wakeUps.stop();
      backOff.cancel();
      try {
        await replacing;
        // A runner that already ended on its own has nothing left to stop.
        await current.runner?.stop().catch((err: Error) => {
          if (!/already stopped/i.test(err.message)) throw err;
        });
      } finally {
        httpClient.close();
        // Last: until the runner has stopped, our jobs and leases must not look abandoned.
        await heartbeat?.stop();
      }
    },
  };
}

/** The job count in a `jobs:insert` NOTIFY payload (`{"count":N}`), at least 1. */
function notifiedJobCount(payload: string | undefined): number {
  try {
    const count = (JSON.parse(payload ?? '{}') as { count?: unknown }).count;
    return typeof count === 'number' && count > 1 ? count : 1;
  } catch {
    return 1;
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A wait that `cancel()` cuts short (a stop during a restart back-off). */
function createPause(): { wait(ms: number): Promise<void>; cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;
  return {
    wait: (ms) =>
      new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, ms);
      }),
    cancel() {
      clearTimeout(timer);
      wake?.();
    },
  };
}

/** NOTIFY `jobs:insert` at a retry's due time, which wakes every worker process's fetch. */
function createWakeUps(deps: WorkerDeps): { schedule(runAt: Date): void; stop(): void } {
  const timers = new Map<number, NodeJS.Timeout>();
  let stopped = false;
  return {
    schedule(runAt) {
      const delay = runAt.getTime() - Date.now();
      if (stopped || delay > WAKE_HORIZON_MS) return;
      const slot = Math.ceil(runAt.getTime() / WAKE_SLOT_MS) * WAKE_SLOT_MS;
      if (timers.has(slot)) return;
      const timer = setTimeout(
        () => {
          timers.delete(slot);
          deps.pool.query(`select pg_notify('jobs:insert', '{"count":1}')`).catch(() => undefined);
        },
        Math.max(0, slot - Date.now()),
      );
      timer.unref();
      timers.set(slot, timer);
    },
    stop() {
      stopped = true;
      for (const timer of timers.values()) clearTimeout(timer);
      timers.clear();
    },
  };
}

/** graphile-worker's log lines, as our JSON lines. */
export function graphileLogger(logger: Logger): WorkerLogger {
  return new WorkerLogger((scope) => (level, message, meta) => {
    const fields = { component: 'graphile-worker', ...scope, ...meta };
    if (level === 'error') logger.error(message, fields);
    else if (level === 'warning') logger.warn(message, fields);
    else if (level === 'info') logger.info(message, fields);
    else logger.debug(message, fields);
  });
}
