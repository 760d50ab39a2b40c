/**
 * The queries that start a delivery's new series of attempts (DLQ retry, resend, recovery).
 * Every function takes the database or a transaction; `tenantId` undefined means "any tenant"
 * (an admin).
 *
 * A new series: the delivery becomes `pending` with `attempt_count = 0` (due at attempt 1),
 * its error cleared, and the caller enqueues attempt 1 in the same transaction. A job of the
 * old series still waiting finds the delivery no longer due at its attempt, and skips it.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/database.js';

/** The SET list of an UPDATE of deliveries that starts a new series. */
export const NEW_SERIES = sql`
  status = 'pending', attempt_count = 0, next_attempt_at = null, last_error = null,
  last_status_code = null, succeeded_at = null, updated_at = now()
`;

/** Starts a new series for one delivery if it is in one of `statuses`; false when it is not. */
export async function restartDelivery(
  db: Kysely<Database>,
  deliveryId: string,
  statuses: readonly string[],
): Promise<boolean> {
  const result = await sql`
    update deliveries set ${NEW_SERIES}
     where id = ${deliveryId} and status = any(${statuses}::text[])
  `.execute(db);
  return Number(result.numAffectedRows ?? 0) > 0;
}

export interface RequeuedRow {
  id: string;
  tenant_id: string;
}

export interface ResendCandidate {
  id: string;
  tenant_id: string;
  webhook_id: string;
  status: string;
  attempt_count: number;
  webhook_enabled: boolean;
}

/** The delivery with its webhook's state, row-locked until commit. */
export async function lockDeliveryForResend(
  db: Kysely<Database>,
  deliveryId: string,
  tenantId: string | undefined,
): Promise<ResendCandidate | undefined> {
  const { rows } = await sql<ResendCandidate>`
    select d.id, d.tenant_id, d.webhook_id, d.status, d.attempt_count, w.enabled as webhook_enabled
      from deliveries d join webhooks w on w.id = d.webhook_id
     where d.id = ${deliveryId} ${tenantId === undefined ? sql`` : sql`and d.tenant_id = ${tenantId}`}
       for update of d
  `.execute(db);
  return rows[0];
}

/**
 * One batch of a recovery: up to `batchSize` of the webhook's `failed` or `dead` deliveries
 * created in [since, until) and not changed since `startedAt` (so one that fails again during
 * the recovery is not taken twice), oldest first, skipping rows another transaction holds. Each
 * starts a new series and leaves the DLQ. The caller enqueues the returned deliveries.
 */
export async function requeueRecoverableBatch(
  db: Kysely<Database>,
  webhookId: string,
  window: { since: Date; until: Date | undefined },
  startedAt: DatabaseTime,
  batchSize: number,
): Promise<RequeuedRow[]> {
  const { rows } = await sql<RequeuedRow>`
    with picked as (
      select id
        from deliveries
       where webhook_id = ${webhookId}
         and status in ('failed', 'dead')
         and created_at >= ${window.since}
         ${window.until === undefined ? sql`` : sql`and created_at < ${window.until}`}
         and updated_at <= ${startedAt}::timestamptz
       order by created_at, id
       limit ${batchSize}
         for update skip locked
    ), restarted as (
      update deliveries d set ${NEW_SERIES}
        from picked
       where d.id = picked.id
      returning d.id, d.tenant_id
    ), unlisted as (
      delete from dlq where delivery_id in (select id from restarted)
    )
    select id, tenant_id from restarted
  `.execute(db);
  return rows;
}

/** A timestamptz as the database's text, microseconds intact (a Date would drop them). */
export type DatabaseTime = string & { readonly __brand: 'DatabaseTime' };

/** The database's clock, so that "started at" compares with timestamps the database wrote. */
export async function databaseNow(db: Kysely<Database>): Promise<DatabaseTime> {
  const { rows } = await sql<{ now: string }>`select clock_timestamp()::text as now`.execute(db);
  return rows[0]!.now as DatabaseTime;
}
