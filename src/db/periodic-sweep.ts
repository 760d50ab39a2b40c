/**
 * Work a process repeats on a timer (auto-disable, retention, token revocations): one run at a
 * time per process — a tick, or a call, that finds one running waits for it instead — and a
 * stop that ends the timer and waits for the run in progress. A failed run is logged; the next
 * tick tries again.
 */
import { coerceError } from '../errors.js';
import type { Logger } from '../observability/logger.js';

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
  const timer = setInterval(() => {
    sweep().catch((err: unknown) =>
      options.logger.error(`${options.name} failed`, { err: coerceError(err).message }),
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
