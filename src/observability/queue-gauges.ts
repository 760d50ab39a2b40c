/**
 * The gauges read from the database: `webhook_queue_depth`, `webhook_queue_oldest_job_age_seconds`
 * and `dlq_size`. Every process keeps them, refreshed by one query every `REFRESH_MS` (not per
 * scrape, so a busy Prometheus or several of them cost nothing more). They are database-wide
 * figures, the same in every process: dashboards and alerts combine them with max(), not sum().
 */
import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';

export const REFRESH_MS = 5000;

export interface QueueFigures {
  /**
   * Deliveries waiting to be sent: `pending`, or `failed` with a retry due now or later, and
   * not in flight (no lease). Paused, dead and finished ones are not counted.
   */
  queueDepth: number;
  /** Seconds since the oldest waiting `deliver` job became due; 0 when none is due. */
  oldestDueAgeSeconds: number;
  /** Rows in the DLQ, all tenants. */
  dlqSize: number;
}

/**
 * One statement. The depth reads `deliveries_tenant_status_idx` one tenant at a time, so it
 * costs the waiting deliveries, not the finished history; the deliveries in flight (a lease
 * each, few) are taken off. The age reads graphile-worker's waiting jobs (`is_available`: not
 * locked, attempts left), through its partial index of them when few are waiting.
 */
export const queueFiguresQuery = sql<{
  queue_depth: number;
  oldest_due_age_seconds: number;
  dlq_size: number;
}>`
  select (select coalesce(sum(w.n), 0)::int
            from tenants t
            cross join lateral (
              select count(*) as n from deliveries d
               where d.tenant_id = t.id and d.status in ('pending', 'failed')) w)
         - (select count(*)::int
              from delivery_leases l
              join deliveries d on d.id = l.delivery_id
             where d.status in ('pending', 'failed')) as queue_depth,
         (select coalesce(extract(epoch from now() - min(j.run_at)), 0)::float8
            from graphile_worker._private_jobs j
           where j.is_available = true
             and j.run_at <= now()
             and j.task_id = (select t.id from graphile_worker._private_tasks t where t.identifier = 'deliver'))
           as oldest_due_age_seconds,
         (select count(*)::int from dlq) as dlq_size
`;

export async function readQueueFigures(db: Db): Promise<QueueFigures> {
  const { rows } = await queueFiguresQuery.execute(db);
  const row = rows[0]!;
  return {
    queueDepth: row.queue_depth,
    oldestDueAgeSeconds: Math.max(0, row.oldest_due_age_seconds),
    dlqSize: row.dlq_size,
  };
}

export interface QueueGauges {
  /** Reads the figures now and sets the gauges (also what the timer does). */
  refresh(): Promise<void>;
  stop(): Promise<void>;
}

export function startQueueGauges(deps: {
  db: Db;
  metrics: Pick<Metrics, 'queueDepth' | 'oldestJobAge' | 'dlqSize'>;
  logger: Logger;
  intervalMs?: number;
}): QueueGauges {
  let running: Promise<void> | undefined;
  let failing = false;
  const refresh = (): Promise<void> => {
    // A slow database must not pile up queries: one at a time.
    running ??= readQueueFigures(deps.db)
      .then((figures) => {
        deps.metrics.queueDepth.set(figures.queueDepth);
        deps.metrics.oldestJobAge.set(figures.oldestDueAgeSeconds);
        deps.metrics.dlqSize.set(figures.dlqSize);
        if (failing) deps.logger.info('queue gauges read again');
        failing = false;
      })
      .catch((err: Error) => {
        // The gauges keep their last values; /health and the process-down alert speak for the
        // database. One line when it starts failing, not one every few seconds.
        if (!failing) deps.logger.warn('queue gauges not read', { err: err.message });
        failing = true;
      })
      .finally(() => {
        running = undefined;
      });
    return running;
  };
  void refresh();
  const timer = setInterval(() => void refresh(), deps.intervalMs ?? REFRESH_MS);
  timer.unref();
  return {
    refresh,
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
