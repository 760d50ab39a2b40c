/**
 * The delivery side of a process: a graphile-worker runner whose `deliver` task makes one
 * attempt of one delivery (see deliver-webhook). `NUM_WORKERS` is its concurrency.
 *
 * graphile-worker wakes on LISTEN/NOTIFY when jobs are added and polls every `POLL_INTERVAL_MS`
 * for jobs that became due. A retry due sooner than a few polls away gets a wake-up NOTIFY at
 * its time, so short delays are kept to within milliseconds rather than a poll interval.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import os from 'node:os';
import { Logger as WorkerLogger, run, type Runner, type Task, type WorkerEvents } from 'graphile-worker';
import type pg from 'pg';
import type { Config } from '../config.js';
import type { Db } from '../db/database.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { inSpanFromTraceparent } from '../observability/trace-context.js';
import { deliverWebhook, parseDeliverPayload, type DeliveryEngineDeps } from './deliver-webhook.js';
import { DELIVER_TASK } from './enqueue.js';
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

export async function startDeliveryWorker(deps: WorkerDeps): Promise<DeliveryWorker> {
  const concurrency = Math.max(1, deps.config.numWorkers);
  const httpClient = createHttpClient({
    allowlist: deps.config.ssrfAllowlist,
    onBlocked: (stage) => deps.metrics.ssrfBlocks.inc({ stage }),
  });
  const wakeUps = createWakeUps(deps);
  // Owner of this process's delivery leases; heartbeat-registered with graphile-worker's ids.
  const leaseOwner = `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const engine: DeliveryEngineDeps = {
    leaseOwner,
    slots: createLocalSlots(concurrency),
    config: deps.config,
    db: deps.db,
    logger: deps.logger,
    metrics: deps.metrics,
    httpClient,
    onRetryScheduled: wakeUps.schedule,
  };
  const deliver: Task = async (payload, helpers) => {
    // One span per attempt, a child of the request that queued it (the payload's traceparent):
    // its queries and the outbound request join the same trace.
    const job = parseDeliverPayload(payload);
    const attributes = {
      'hookrelay.delivery_id': job?.delivery_id ?? '',
      'hookrelay.attempt': job?.attempt ?? 0,
      'graphile_worker.job_id': helpers.job.id,
    };
    await inSpanFromTraceparent('deliver webhook', job?.traceparent, attributes, async (span) => {
      // helpers.abortSignal fires when a graceful stop has waited `gracefulShutdownAbortTimeout`:
      // a request still running then is cut short and its job handed back.
      const outcome = await deliverWebhook(engine, payload, {
        signal: helpers.abortSignal,
        priority: helpers.job.priority,
      });
      span.setAttribute('hookrelay.outcome', outcome);
    });
  };

  const events: WorkerEvents = new EventEmitter();
  const lockOwners = new Set<string>();
  events.on('pool:create', ({ workerPool }) => lockOwners.add(workerPool.id));
  events.on('worker:create', ({ worker }) => lockOwners.add(worker.workerId));

  let runner: Runner;
  let heartbeat: Heartbeat | undefined;
  try {
    runner = await run({
      pgPool: deps.pool,
      concurrency,
      noHandleSignals: true,
      pollInterval: POLL_INTERVAL_MS,
      parsedCronItems: [],
      logger: graphileLogger(deps.logger),
      taskList: { [DELIVER_TASK]: deliver },
      gracefulShutdownAbortTimeout: deps.config.shutdownTimeoutMs,
      events,
      preset: {
        worker: {
          // One query locks a batch of due jobs for the whole pool instead of one per worker.
          localQueue: { size: concurrency },
          // Completions are batched into one statement; a job run again is harmless (our claim).
          completeJobBatchDelay: 0,
          failJobBatchDelay: 0,
        },
      },
    });
    heartbeat = await startHeartbeat({
      db: deps.db,
      workerIds: () => [leaseOwner, ...lockOwners],
      staleAfterMs: deps.config.workerStaleAfterMs,
      logger: deps.logger,
    });
  } catch (err) {
    wakeUps.stop();
    httpClient.close();
    throw err;
  }

  return {
    lockOwnerIds: () => [...lockOwners],
    async stop() {
      wakeUps.stop();
      try {
        await runner.stop();
      } finally {
        httpClient.close();
        // Last: until the runner has stopped, our jobs and leases must not look abandoned.
        await heartbeat?.stop();
      }
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
