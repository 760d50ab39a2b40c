/**
 * The yardstick each run of `npm run bench` is held to: what a minimal batch-delivery build on
 * the same stack reached on a machine of this kind (2 cores), measured with this bench's method
 * (an open-loop generator, every latency from the scheduled send time, one receiver, one webhook
 * per event, each phase on a fresh PostgreSQL with fsync and synchronous_commit on; saturation
 * with 64 connections back to back). That build is ~350 lines: Koa, pg and graphile-worker 0.17
 * in the same PostgreSQL; group commit with one job per tenant per batch (up to 200 delivery ids,
 * added by `add_jobs` in the batch's one statement); a job loads its deliveries with their
 * events and webhooks in one query, signs and posts them all through undici `Pool`s, and writes
 * every attempt, status and retry in one statement. It has none of this service's tenant limits
 * and fairness, stale-worker recovery, SSRF guard, DLQ, audit, retention, metrics or traces.
 *
 * With a receiver that answers at once: its defaults. After 100 ms: its best configuration
 * (256 concurrent jobs, 1,024 connections), which gave event-to-receiver figures only; with its
 * defaults it managed 626 deliveries/s there.
 */

/** The figures to beat for one phase; a phase is ahead when it is at least as good in each. */
export interface Yardstick {
  /** POST /events p99, ms. */
  postP99?: number;
  /** Event-to-receiver p99, ms. */
  e2eP99?: number;
  /** Events accepted and delivered per second (saturation). */
  perSec?: number;
}

const AT_ONCE: Record<string, Yardstick> = {
  '250/s': { postP99: 17, e2eP99: 24 },
  '500/s': { postP99: 15, e2eP99: 22 },
  '1,000/s': { postP99: 24, e2eP99: 32 },
  '2,000/s': { postP99: 33, e2eP99: 45 },
  '3,000/s': { postP99: 40, e2eP99: 58 },
  saturation: { perSec: 4192, e2eP99: 58 },
};

const AFTER_100_MS: Record<string, Yardstick> = {
  '250/s': { e2eP99: 58 },
  '500/s': { e2eP99: 204 },
  '1,000/s': { e2eP99: 203 },
  '2,000/s': { e2eP99: 70 },
  saturation: { perSec: 3369, e2eP99: 69 },
};

/** The yardstick for a phase (by its receiver's delay and its name, e.g. `1,000/s`), if there is one. */
export function yardstickFor(receiverDelayMs: number, phase: string): Yardstick | undefined {
  if (receiverDelayMs === 0) return AT_ONCE[phase];
  if (receiverDelayMs === 100) return AFTER_100_MS[phase];
  return undefined;
}

/** What a phase measured, in the yardstick's terms. */
export interface Measured {
  postP99: number;
  e2eP99: number;
  perSec: number;
  /** Every accepted event delivered by the end of the phase. */
  allDelivered: boolean;
}

/** Whether a phase did at least as well as its yardstick in every figure the yardstick has. */
export function isAhead(measured: Measured, yardstick: Yardstick): boolean {
  return (
    measured.allDelivered &&
    (yardstick.postP99 === undefined || measured.postP99 <= yardstick.postP99) &&
    (yardstick.e2eP99 === undefined || measured.e2eP99 <= yardstick.e2eP99) &&
    (yardstick.perSec === undefined || measured.perSec >= yardstick.perSec)
  );
}

/** A yardstick as a table cell: `17 / 24` (POST p99 / e2e p99), `e2e 58`, or `4,192/s`. */
export function describeYardstick(yardstick: Yardstick, fmt: (n: number) => string): string {
  if (yardstick.perSec !== undefined) return `${fmt(yardstick.perSec)}/s`;
  if (yardstick.postP99 !== undefined) return `${fmt(yardstick.postP99)} / ${fmt(yardstick.e2eP99 ?? NaN)}`;
  return `e2e ${fmt(yardstick.e2eP99 ?? NaN)}`;
}
