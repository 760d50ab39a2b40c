/**
 * Recovery from dead worker processes. graphile-worker leaves the jobs of a process that died
 * (kill -9, out of memory, a lost machine) locked for 4 hours. Instead, every worker process
 * keeps a row in `worker_heartbeats` fresh, and a sweeper in every process releases the jobs
 * (graphile_worker.force_unlock_workers) and delivery leases of workers whose heartbeat is
 * older than WORKER_STALE_AFTER_MS, and queues their deliveries in flight (their leases) again.
 * An attempt made twice that way is recorded once (`recordAttempts` checks attempt_count).
 */
import os from 'node:os';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import { deliveryJobCtes } from './enqueue.js';
import type { Logger } from '../observability/logger.js';

export interface HeartbeatOptions {
  db: Kysely<Database>;
  /**
   * Every id this process's work carries: what graphile-worker writes in `locked_by` (its pool's
   * and its workers' ids, known only once they start) and the owner of our delivery leases.
   */
  workerIds: () => string[];
  staleAfterMs: number;
  logger: Logger;
}

export interface Heartbeat {
  /** Stops beating and sweeping, and removes this worker's row. */
  stop(): Promise<void>;
}

export async function beat(db: Kysely<Database>, workerIds: readonly string[]): Promise<void> {
  if (workerIds.length === 0) return;
  await sql`
    insert into worker_heartbeats (worker_id, hostname, pid)
    select unnest(${workerIds}::text[]), ${os.hostname()}, ${process.pid}
    on conflict (worker_id) do update set last_seen_at = now()
  `.execute(db);
}

/**
 * Releases what dead workers hold: jobs locked longer than the staleness by a worker without a
 * fresh heartbeat (also one that never wrote a heartbeat), and their delivery leases. Returns
 * the worker ids it released.
 */
export async function sweepStaleWorkers(db: Kysely<Database>, staleAfterMs: number): Promise<string[]> {
  return db.transaction().execute(async (trx) => {
    const stale = await sql<{ worker_id: string }>`
      with fresh as (
        select worker_id from worker_heartbeats
         where last_seen_at > now() - make_interval(secs => ${staleAfterMs / 1000})
      )
      select worker_id from worker_heartbeats
       where worker_id not in (select worker_id from fresh)
      union
      select distinct locked_by from graphile_worker._private_jobs
       where locked_by is not null
         and locked_at < now() - make_interval(secs => ${staleAfterMs / 1000})
         and locked_by not in (select worker_id from fresh)
      union
      select distinct worker_id from delivery_leases
       where acquired_at < now() - make_interval(secs => ${staleAfterMs / 1000})
         and worker_id not in (select worker_id from fresh)
    `.execute(trx);
    const ids = stale.rows.map((row) => row.worker_id);
    if (ids.length === 0) return [];
    // A job whose key went to a newer job while it ran (graphile-worker's add_jobs then sets its
    // key to null and its attempts to max_attempts, e.g. a throttled attempt queued again) can
    // never run again, and nothing else would remove it: the newer job carries the delivery on.
    // Its worker would have deleted it on completion; the sweeper does that in its stead.
    await sql`
      delete from graphile_worker._private_jobs
       where locked_by = any(${ids}::text[]) and key is null and attempts >= max_attempts
    `.execute(trx);
    await sql`select graphile_worker.force_unlock_workers(${ids}::text[])`.execute(trx);
    // Their requests in flight: each delivery still due goes back in the queue, at the attempt
    // its lease was taken for (the next one after those recorded).
    await sql`
      with released as (
        delete from delivery_leases where worker_id = any(${ids}::text[]) returning delivery_id
      ), src as materialized (
        select d.id as delivery_id, d.attempt_count + 1 as attempt, d.tenant_id, null::int as priority,
               null::timestamptz as run_at, null::text as traceparent,
               (row_number() over (order by d.id))::int as ord
          from deliveries d
         where d.id in (select delivery_id from released) and d.status in ('pending', 'failed')
      ), ${deliveryJobCtes('src')}
      select count(*) from added_jobs
    `.execute(trx);
    await sql`delete from worker_heartbeats where worker_id = any(${ids}::text[])`.execute(trx);
    return ids;
  });
}

/**
 * Beats every staleness/6 (5 s by default) and sweeps every staleness/3, at a random offset per
 * process. A process whose beat failed (the database was away) cannot tell a dead worker from
 * one that could not reach the database either — nor from itself: it sweeps again only after
 * beating without a break for a whole staleness window, which gives every live worker time to
 * beat again first.
 */
export async function startHeartbeat(options: HeartbeatOptions): Promise<Heartbeat> {
  const { db, workerIds, staleAfterMs, logger } = options;
  await beat(db, workerIds());
  /** Since when beats have succeeded without a break; undefined after a failed one. */
  let beatingSince: number | undefined = Date.now() - staleAfterMs;
  const beatEvery = Math.max(200, Math.floor(staleAfterMs / 6));
  const sweepEvery = Math.max(500, Math.floor(staleAfterMs / 3));
  const beatTimer = setInterval(() => {
    beat(db, workerIds()).then(
      () => {
        beatingSince ??= Date.now();
      },
      (err: Error) => {
        beatingSince = undefined;
        logger.warn('heartbeat failed', { err: err.message });
      },
    );
  }, beatEvery);
  const sweep = () => {
    if (beatingSince === undefined || Date.now() - beatingSince < staleAfterMs) return;
    sweepStaleWorkers(db, staleAfterMs).then(
      (released) => {
        if (released.length > 0) logger.warn('released jobs of stale workers', { worker_ids: released });
      },
      (err: Error) => logger.warn('stale-worker sweep failed', { err: err.message }),
    );
  };
  const sweepTimer = setInterval(sweep, sweepEvery + Math.floor(Math.random() * 500));
  beatTimer.unref();
  sweepTimer.unref();
  sweep();
  return {
    async stop() {
      clearInterval(beatTimer);
      clearInterval(sweepTimer);
      await sql`delete from worker_heartbeats where worker_id = any(${workerIds()}::text[])`
        .execute(db)
        .catch(() => undefined);
    },
  };
}
