/**
 * Data retention: keeps the hot tables from growing without end. Finished events (with their
 * deliveries and attempts) older than RETENTION_DAYS (default 30), attempts of finished
 * deliveries older than that, and idempotency keys past their 24 h are deleted in batches
 * (retention-repository.ts says exactly what qualifies). Nothing a DLQ entry or an unfinished
 * delivery needs is touched. RETENTION_DAYS=0 keeps everything: no sweep runs.
 *
 * Not swept: `audit_log` (the audit trail is kept for good), `dlq` (dead letters leave by
 * retry or `DELETE /dlq/:id`), and graphile-worker's jobs (it deletes a job when it completes).
 *
 * Every worker process sweeps once per RETENTION_SWEEP_MS. A run goes table by table, batch by
 * batch (each a short transaction of at most `batchSize` rows, plus the attempts of the
 * deliveries it deletes), until a batch comes back short or the time budget is spent; the next
 * run carries on. Several processes sweeping at once share the rows (`skip locked`) rather than
 * queue on them.
 */
import type { Db } from '../db/database.js';
import { startPeriodicSweep, type PeriodicSweep } from '../db/periodic-sweep.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import {
  deleteEvents,
  deleteExpiredIdempotencyKeys,
  deleteOldAttempts,
  limitLockWaits,
  lockDeliveriesOfEvents,
  pickRemovableEvents,
  retentionCutoff,
  type PickedEvent,
  type Position,
} from './retention-repository.js';

/**
 * Rows per batch: attempts or idempotency keys; or events and their deliveries together (at
 * least one event), which take their attempts with them.
 */
export const RETENTION_BATCH_SIZE = 1000;
/** A run stops starting batches after this long; the next run carries on where it is needed. */
export const RETENTION_TIME_BUDGET_MS = 20_000;

export type RetentionTable = 'events' | 'deliveries' | 'delivery_attempts' | 'idempotency_keys';

export interface RetentionRun {
  /** Rows deleted, by table (an event's deliveries and attempts included). */
  deleted: Record<RetentionTable, number>;
  /** Batches (transactions) run, by the table each one swept. */
  batches: { events: number; delivery_attempts: number; idempotency_keys: number };
  /** False when the time budget or a stop ended the run with rows perhaps left to delete. */
  complete: boolean;
  durationMs: number;
}

export interface RetentionOptions {
  /** Keep this many days; 0 = keep everything (the run deletes nothing). */
  retentionDays: number;
  batchSize?: number;
  timeBudgetMs?: number;
  /** Asked before each batch: true ends the run there (a graceful stop). */
  stopping?: () => boolean;
  /** Told after each batch what it deleted, so a run that fails later is still counted. */
  onDeleted?: (table: RetentionTable, rows: number) => void;
}

/**
 * The first of `picked` whose rows (each event and its deliveries) add up to at most `rows`,
 * and at least one: what one batch deletes, so that a wide fan-out does not make one statement
 * delete a thousand events' hundred deliveries each.
 */
export function withinRows(picked: readonly PickedEvent[], rows: number): PickedEvent[] {
  let total = 0;
  let count = 0;
  for (const event of picked) {
    total += 1 + event.deliveries;
    if (count > 0 && total > rows) break;
    count++;
  }
  return picked.slice(0, count);
}

/** One run of the sweep: deletes what the retention period lets go, in batches. */
export async function removeExpiredRows(db: Db, options: RetentionOptions): Promise<RetentionRun> {
  const started = Date.now();
  const batchSize = options.batchSize ?? RETENTION_BATCH_SIZE;
  const deadline = started + (options.timeBudgetMs ?? RETENTION_TIME_BUDGET_MS);
  const run: RetentionRun = {
    deleted: { events: 0, deliveries: 0, delivery_attempts: 0, idempotency_keys: 0 },
    batches: { events: 0, delivery_attempts: 0, idempotency_keys: 0 },
    complete: false,
    durationMs: 0,
  };
  const count = (table: RetentionTable, rows: number) => {
    run.deleted[table] += rows;
    if (rows > 0) options.onDeleted?.(table, rows);
  };
  const finish = (complete: boolean): RetentionRun => {
    run.complete = complete;
    run.durationMs = Date.now() - started;
    return run;
  };
  const mustStop = () => Date.now() >= deadline || options.stopping?.() === true;
  if (options.retentionDays <= 0) return finish(true);

  const cutoff = await retentionCutoff(db, options.retentionDays);

  // Events first: their attempts go with them, which leaves fewer for the attempts pass.
  let position: Position | undefined;
  for (;;) {
    if (mustStop()) return finish(false);
    const batch = await db.transaction().execute(async (trx) => {
      await limitLockWaits(trx);
      const picked = await pickRemovableEvents(trx, cutoff, position, batchSize);
      const taken = withinRows(picked, batchSize);
      if (taken.length === 0) return { picked, taken, removed: undefined };
      const ids = taken.map((event) => event.id);
      const locked = await lockDeliveriesOfEvents(trx, ids);
      return { picked, taken, removed: await deleteEvents(trx, cutoff, ids, locked) };
    });
    run.batches.events++;
    if (batch.removed) {
      count('events', batch.removed.events);
      count('deliveries', batch.removed.deliveries);
      count('delivery_attempts', batch.removed.delivery_attempts);
    }
    // Done when the pick came back short and every event picked was taken.
    if (batch.picked.length < batchSize && batch.taken.length === batch.picked.length) break;
    // Past every event taken, deleted or not: one kept back (a delivery resent a moment ago,
    // a delivery another transaction holds) is looked at again by the next run, not this one.
    // Those picked but not taken (over the batch's rows) come first in the next batch.
    const last = batch.taken[batch.taken.length - 1]!;
    position = { at: last.created_at, id: last.id };
  }

  position = undefined;
  for (;;) {
    if (mustStop()) return finish(false);
    const batch = await db.transaction().execute(async (trx) => {
      await limitLockWaits(trx);
      return deleteOldAttempts(trx, cutoff, position, batchSize);
    });
    run.batches.delivery_attempts++;
    count('delivery_attempts', batch.deleted);
    if (batch.deleted < batchSize || batch.last === undefined) break;
    position = batch.last;
  }

  for (;;) {
    if (mustStop()) return finish(false);
    const deleted = await db.transaction().execute(async (trx) => {
      await limitLockWaits(trx);
      return deleteExpiredIdempotencyKeys(trx, batchSize);
    });
    run.batches.idempotency_keys++;
    count('idempotency_keys', deleted);
    if (deleted < batchSize) break;
  }
  return finish(true);
}

/** sweep() runs it now (also what the timer does); on stop() a run in progress stops before its next batch. */
export type RetentionSweep = PeriodicSweep<RetentionRun>;

export function startRetentionSweep(deps: {
  db: Db;
  logger: Logger;
  metrics: Pick<Metrics, 'retentionDeleted'>;
  retentionDays: number;
  everyMs: number;
  batchSize?: number;
  timeBudgetMs?: number;
}): RetentionSweep {
  let stopping = false;
  return startPeriodicSweep({
    name: 'retention sweep',
    everyMs: deps.everyMs,
    logger: deps.logger,
    onStop: () => {
      stopping = true;
    },
    run: async () => {
      const run = await removeExpiredRows(deps.db, {
        retentionDays: deps.retentionDays,
        batchSize: deps.batchSize,
        timeBudgetMs: deps.timeBudgetMs,
        stopping: () => stopping,
        onDeleted: (table, rows) => deps.metrics.retentionDeleted.inc({ table }, rows),
      });
      const total = Object.values(run.deleted).reduce((sum, rows) => sum + rows, 0);
      // Every run logs its counts; one that found nothing to do says so only at debug level.
      deps.logger.log(total > 0 || !run.complete ? 'info' : 'debug', 'retention sweep', {
        retention_days: deps.retentionDays,
        deleted: run.deleted,
        batches: run.batches,
        complete: run.complete,
        duration_ms: run.durationMs,
      });
      return run;
    },
  });
}
