/**
 * Wake-ups for jobs due soon. graphile-worker wakes on LISTEN/NOTIFY when jobs are added and
 * polls for jobs that became due; a retry (or a deferred batch) due sooner than a few polls
 * away gets a `jobs:insert` NOTIFY at its time instead, which wakes every worker process's
 * fetch, so short delays are kept to within milliseconds rather than a poll interval.
 */
import type pg from 'pg';

/** Jobs due within this long get a wake-up at their time instead of waiting for a poll. */
const WAKE_HORIZON_MS = 10_000;
/** Wake-ups are coalesced to this granularity: at most one NOTIFY per slot per process. */
const WAKE_SLOT_MS = 50;

export interface WakeUps {
  schedule(runAt: Date): void;
  stop(): void;
}

export function createWakeUps(pool: pg.Pool): WakeUps {
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
          pool.query(`select pg_notify('jobs:insert', '{"count":1}')`).catch(() => undefined);
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
