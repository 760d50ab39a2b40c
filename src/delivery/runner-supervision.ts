/**
 * A graphile-worker runner that is replaced when it fails. graphile-worker 0.17 gives up on a
 * pool that cannot record a job's end (the database went away while completing or failing a
 * job: "queue is in an inconsistent state"); the pool then shuts down, and that shutdown can
 * hang for good. The process would live on, heartbeat and all, taking no jobs. Such a runner is
 * retired instead: its ids leave the heartbeat, its running jobs end, what it still holds locked
 * is released, and a new runner takes over as soon as the database answers.
 */
import { EventEmitter } from 'node:events';
import { run, type Runner, type RunnerOptions, type Task, type WorkerEvents } from 'graphile-worker';
import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import type { Logger } from '../observability/logger.js';

export interface SupervisedRunner {
  /** The ids graphile-worker writes into `locked_by` for the current runner (its pool's and workers'). */
  lockOwnerIds(): string[];
  /** Takes no new jobs, lets running ones finish, then resolves. */
  stop(): Promise<void>;
}

export interface SupervisionOptions {
  db: Db;
  logger: Logger;
  /** graphile-worker's options, but for the task list and events, which are given here. */
  runnerOptions: Omit<RunnerOptions, 'taskList' | 'events'>;
  taskName: string;
  task: Task;
  /** Told before each runner starts (a retired runner's fetches never end). */
  onRunnerStart?: () => void;
  /** Extra listeners on graphile-worker's events. */
  events?: (events: WorkerEvents) => void;
}

/** Back-off between attempts to replace a failed runner (the database is away). */
const RESTART_MIN_DELAY_MS = 500;
const RESTART_MAX_DELAY_MS = 5000;
/** How long a failed runner's jobs may take to end. */
const RETIRED_JOBS_WAIT_MS = 35_000;

interface Generation {
  runner: Runner | undefined;
  /** Its pool's and workers' ids: what graphile-worker writes in `locked_by` for it. */
  ids: Set<string>;
  /** The jobs it is running now. */
  running: Set<Promise<unknown>>;
  retired: boolean;
}

const newGeneration = (): Generation => ({
  runner: undefined,
  ids: new Set(),
  running: new Set(),
  retired: false,
});

export async function startSupervisedRunner(options: SupervisionOptions): Promise<SupervisedRunner> {
  const { db, logger } = options;
  let current = newGeneration();
  let stopping = false;
  let replacing: Promise<void> | undefined;
  const backOff = createPause();

  const events: WorkerEvents = new EventEmitter();
  events.on('pool:create', ({ workerPool }) => current.ids.add(workerPool.id));
  events.on('worker:create', ({ worker }) => current.ids.add(worker.workerId));
  events.on('pool:fatalError', ({ workerPool, error }) => {
    if (current.ids.has(workerPool.id)) retire(current, errorText(error));
  });
  events.on('worker:fatalError', ({ worker, error }) => {
    if (current.ids.has(worker.workerId)) retire(current, errorText(error));
  });
  options.events?.(events);

  const taskOf =
    (generation: Generation): Task =>
    async (payload, helpers) => {
      const job = Promise.resolve(options.task(payload, helpers));
      generation.running.add(job);
      try {
        await job;
      } finally {
        generation.running.delete(job);
      }
    };

  const startRunner = (generation: Generation) => {
    options.onRunnerStart?.();
    return run({ ...options.runnerOptions, events, taskList: { [options.taskName]: taskOf(generation) } });
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
    logger.error('delivery runner failed; replacing it', { reason });
    replacing = replace(generation);
  }

  async function replace(old: Generation): Promise<void> {
    // Ends what the old runner runs beside its pool (its LISTEN client), without waiting for the pool.
    old.runner?.stop().catch(() => undefined);
    await Promise.race([Promise.allSettled([...old.running]), backOff.wait(RETIRED_JOBS_WAIT_MS)]);
    for (let attempt = 0; !stopping; attempt++) {
      const next = current;
      try {
        await sql`select graphile_worker.force_unlock_workers(${[...old.ids]}::text[])`.execute(db);
        next.runner = await startRunner(next);
        if (stopping) return;
        supervise(next);
        logger.warn('delivery runner replaced', { released_worker_ids: [...old.ids] });
        return;
      } catch (err) {
        // Whatever a half-started runner locked is released with the old runner's jobs.
        for (const id of next.ids) old.ids.add(id);
        next.ids.clear();
        const delayMs = Math.min(RESTART_MAX_DELAY_MS, RESTART_MIN_DELAY_MS * 2 ** attempt);
        logger.warn('delivery runner not replaced yet; trying again', {
          err: errorText(err),
          retry_in_ms: delayMs,
        });
        await backOff.wait(delayMs);
      }
    }
  }

  current.runner = await startRunner(current);
  supervise(current);

  return {
    lockOwnerIds: () => [...current.ids],
    async stop() {
      stopping = true;
      backOff.cancel();
      await replacing;
      // A runner that already ended on its own has nothing left to stop.
      await current.runner?.stop().catch((err: Error) => {
        if (!/already stopped/i.test(err.message)) throw err;
      });
    },
  };
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
