/**
 * The delivery side of a process: a supervised graphile-worker runner whose `deliver` task
 * hands each job's batch to the delivery engine (deliver-batch), a heartbeat that lets other
 * processes release this one's jobs and leases should it die, and wake-ups for jobs due soon.
 * `NUM_WORKERS` is how many jobs the runner works on at once; `MAX_IN_FLIGHT` bounds the
 * requests the engine keeps open.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { Logger as WorkerLogger, type Task } from 'graphile-worker';
import type pg from 'pg';
import type { Config } from '../config.js';
import type { Db } from '../db/database.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { SecretBox } from '../secrets/secret-box.js';
import { createDeliveryEngine, type DeliveryEngine } from './deliver-batch.js';
import { DELIVER_TASK, tenantFlag } from './enqueue.js';
import { createHttpClient, type HttpClientOptions } from './http-client.js';
import { createThreadedHttpClient } from './http-thread.js';
import { tracingStarted } from '../observability/tracing.js';
import { startSupervisedRunner, type SupervisedRunner } from './runner-supervision.js';
import { createWakeUps } from './wake-ups.js';
import { startHeartbeat, type Heartbeat } from './worker-heartbeat.js';

export interface WorkerDeps {
  config: Readonly<Config>;
  db: Db;
  pool: pg.Pool;
  logger: Logger;
  metrics: Metrics;
  secrets: SecretBox;
}

export interface DeliveryWorker {
  /**
   * The ids this process's work carries, as its heartbeat names them: the owner of its delivery
   * leases, and what graphile-worker writes into `locked_by` for its jobs.
   */
  lockOwnerIds(): string[];
  /** The delivery engine: requests in flight, for tests and figures. */
  engine: DeliveryEngine;
  /** Takes no new jobs, lets requests in flight finish (or cuts them short), then resolves. */
  stop(): Promise<void>;
}

const POLL_INTERVAL_MS = 1000;

export async function startDeliveryWorker(deps: WorkerDeps): Promise<DeliveryWorker> {
  const { config, logger } = deps;
  const httpOptions: HttpClientOptions = {
    allowlist: config.ssrfAllowlist,
    onBlocked: (stage) => deps.metrics.ssrfBlocks.inc({ stage }),
  };
  // Requests go out from a thread of their own, unless the process traces: the undici
  // instrumentation (client spans, the receiver's traceparent) works on the event loop only.
  const httpClient = tracingStarted() ? createHttpClient(httpOptions) : createThreadedHttpClient(httpOptions);
  const wakeUps = createWakeUps(deps.pool);
  // Owner of this process's delivery leases; heartbeat-registered with graphile-worker's ids.
  const leaseOwner = `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const engine = createDeliveryEngine({
    config,
    db: deps.db,
    logger,
    metrics: deps.metrics,
    httpClient,
    secrets: deps.secrets,
    leaseOwner,
    onJobDue: wakeUps.schedule,
  });
  const task: Task = async (payload) => {
    await engine.deliverBatch(payload);
  };

  let runner: SupervisedRunner | undefined;
  let heartbeat: Heartbeat | undefined;
  try {
    runner = await startSupervisedRunner({
      db: deps.db,
      logger,
      taskName: DELIVER_TASK,
      task,
      runnerOptions: {
        pgPool: deps.pool,
        concurrency: Math.max(1, config.numWorkers),
        noHandleSignals: true,
        pollInterval: POLL_INTERVAL_MS,
        parsedCronItems: [],
        logger: graphileLogger(logger),
        gracefulShutdownAbortTimeout: config.shutdownTimeoutMs,
        // Tenants at their concurrency cap are left in the queue for a moment (their jobs would
        // only be deferred again). Null, most of the time, keeps the local queue in use.
        forbiddenFlags: () => {
          const held = engine.heldOffTenants();
          return held.length > 0 ? held.map(tenantFlag) : null;
        },
        preset: {
          worker: {
            localQueue: {
              size: config.workerLocalQueueSize > 0 ? config.workerLocalQueueSize : -1,
              ttl: 2000,
            },
            // Completions are batched into one statement; a job run again is harmless.
            completeJobBatchDelay: 0,
            failJobBatchDelay: 0,
          },
        },
      },
    });
    const ids = runner.lockOwnerIds;
    heartbeat = await startHeartbeat({
      db: deps.db,
      workerIds: () => [leaseOwner, ...ids()],
      staleAfterMs: config.workerStaleAfterMs,
      logger,
    });
  } catch (err) {
    await runner?.stop().catch(() => undefined);
    wakeUps.stop();
    httpClient.close();
    throw err;
  }

  return {
    lockOwnerIds: () => [leaseOwner, ...runner.lockOwnerIds()],
    engine,
    async stop() {
      wakeUps.stop();
      try {
        engine.beginStop();
        await runner.stop();
        await engine.stop(config.shutdownTimeoutMs);
      } finally {
        httpClient.close();
        // Last: until the requests have ended, our jobs and leases must not look abandoned.
        await heartbeat?.stop();
      }
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
