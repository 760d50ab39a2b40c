/**
 * Work a process repeats on a timer (auto-disable, retention, token revocations): one run at a
 * time per process — a tick, or a call, that finds one running waits for it instead — and a
 * stop that ends the timer and waits for the run in progress. A failed run is logged and the
 * next tick tries again; while runs keep failing (the database is away) the log gets the first
 * failure, a reminder a minute, and one line when a run succeeds again — not a line per tick.
 */
import { coerceError } from '../errors.js';
import type { Logger } from '../observability/logger.js';

/** While a sweep keeps failing, how often its failure is logged again. */
export const FAILURE_REMINDER_MS = 60_000;

export interface PeriodicSweep<R> {
  /** Runs the sweep now (also what the timer does), or joins the run in progress. */
  sweep(): Promise<R>;
  /** No more runs; waits for one that is running. */
  stop(): Promise<void>;
}

export function startPeriodicSweep<R>(options: {
  /** For the log line of a failed run: `<name> failed`. */
  name: string;
  everyMs: number;
  logger: Logger;
  run(): Promise<R>;
  /** Told when stop() is called, before the run in progress is waited for. */
  onStop?(): void;
}): PeriodicSweep<R> {
  let running: Promise<R> | undefined;
  const sweep = (): Promise<R> => {
    running ??= options.run().finally(() => {
      running = undefined;
    });
    return running;
  };
  /** Timer runs failed in a row, and when the last of them was logged. */
  let failedRuns = 0;
  let loggedAt = 0;
  const timer = setInterval(() => {
    sweep().then(
      () => {
        if (failedRuns > 0) options.logger.info(`${options.name} recovered`, { failed_runs: failedRuns });
        failedRuns = 0;
      },
      (err: unknown) => {
        failedRuns++;
        if (failedRuns > 1 && Date.now() - loggedAt < FAILURE_REMINDER_MS) return;
        loggedAt = Date.now();
        options.logger.error(`${options.name} failed`, {
          err: coerceError(err).message,
          failed_runs: failedRuns,
        });
      },
    );
  }, options.everyMs);
  timer.unref();
  return {
    sweep,
    async stop() {
      options.onStop?.();
      clearInterval(timer);
      await running?.catch(() => undefined);
    },
  };
}
