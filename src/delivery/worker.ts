/**
 * The delivery side of a process: a graphile-worker runner whose `deliver` task sends one
 * delivery. `NUM_WORKERS` is its concurrency.
 */
import { Logger as WorkerLogger, run, type Runner, type Task } from 'graphile-worker';
import type pg from 'pg';
import type { Config } from '../config.js';
import type { Db } from '../db/database.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { DELIVER_TASK } from './enqueue.js';

export interface WorkerDeps {
  config: Readonly<Config>;
  db: Db;
  pool: pg.Pool;
  logger: Logger;
  metrics: Metrics;
}

export interface DeliveryWorker {
  /** Takes no new jobs, lets running ones finish (or hands them back), then resolves. */
  stop(): Promise<void>;
}

export async function startDeliveryWorker(deps: WorkerDeps): Promise<DeliveryWorker> {
  const deliver: Task = async () => {
    // Filled in by the delivery engine.
  };
  const runner: Runner = await run({
    pgPool: deps.pool,
    concurrency: Math.max(1, deps.config.numWorkers),
    noHandleSignals: true,
    pollInterval: 2000,
    parsedCronItems: [],
    logger: graphileLogger(deps.logger),
    taskList: { [DELIVER_TASK]: deliver },
  });
  return {
    async stop() {
      await runner.stop();
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
