/**
 * Dead letters: recording, listing, removing, and taking them out in batches for a new series
 * (see delivery/restart-repository.ts). Every function takes the database or a transaction;
 * `tenantId` undefined means "any tenant" (an admin).
 */
import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { Database } from '../db/database.js';
import { pageWithTotal } from '../db/page.js';
import { NEW_SERIES, type DatabaseTime, type RequeuedRow } from '../delivery/restart-repository.js';

export interface DeadLetter {
  deliveryId: string;
  tenantId: string;
  webhookId: string;
  eventId: string;
  lastError: string;
  /** Attempts made in the series that ended here. */
  attempts: number;
}

/** What recording a dead letter found. */
export interface DeadLetterOutcome {
  /** The tenant's DLQ holds max_dlq_size entries or more, this one included. */
  dlqFull: boolean;
  /** The tenant's max_dlq_size. */
  maxSize: number;
}

/**
 * Records dead letters, in one statement however many; call it in the transaction that makes
 * the deliveries `dead`. One row per delivery (the primary key): a delivery that dies again after
 * a retry refreshes its row.
 *
 * Every entry is written, whatever the tenant's max_dlq_size: it is the only record of the
 * failure. Each answer (in the order given) says whether the tenant's DLQ was full (at or over
 * max_dlq_size) once that letter was in, as if the letters were written one after another; the
 * caller then disables the webhook (webhook-state), so its other deliveries wait as `paused`
 * instead of dying too. Concurrent deaths may each see room, so the DLQ can end a few entries
 * over the limit; never fewer are kept.
 */
export async function insertDeadLetters(
  db: Kysely<Database>,
  letters: readonly DeadLetter[],
): Promise<DeadLetterOutcome[]> {
  if (letters.length === 0) return [];
  const rows = letters.map((l, ord) => ({
    ord,
    delivery_id: l.deliveryId,
    tenant_id: l.tenantId,
    webhook_id: l.webhookId,
    event_id: l.eventId,
    last_error: l.lastError,
    attempts: l.attempts,
  }));
  // The statement's snapshot is from before its insert: `before` counts what was there (up to
  // the limit plus this batch, so a huge DLQ costs no more than a full one), and each letter adds
  // one unless its delivery already had a row.
  const { rows: outcomes } = await sql<{ ord: number; max_size: number; counted: number }>`
    with letter as materialized (
      select l.*, exists (select 1 from dlq where dlq.delivery_id = l.delivery_id) as had_row
        from json_to_recordset(${JSON.stringify(rows)}::json)
          as l(ord int, delivery_id uuid, tenant_id text, webhook_id uuid, event_id uuid,
               last_error text, attempts int)
    ),
    written as (
      insert into dlq (delivery_id, tenant_id, webhook_id, event_id, last_error, attempts)
      select delivery_id, tenant_id, webhook_id, event_id, last_error, attempts from letter order by ord
      on conflict (delivery_id) do update
        set last_error = excluded.last_error, attempts = excluded.attempts, created_at = now()
    ),
    tenant as (
      select t.tenant_id, t.max_size,
             (select count(*)::int from (
                select 1 from dlq where dlq.tenant_id = t.tenant_id limit t.max_size + t.letters) entries) as before
        from (select letter.tenant_id,
                     coalesce((select max_dlq_size from quotas q where q.tenant_id = letter.tenant_id), 100) as max_size,
                     count(*)::int as letters
                from letter group by letter.tenant_id) t
    )
    select letter.ord, tenant.max_size,
           tenant.before + (count(*) filter (where not letter.had_row)
                              over (partition by letter.tenant_id order by letter.ord))::int as counted
      from letter join tenant using (tenant_id)
     order by letter.ord
  `.execute(db);
  return outcomes.map((o) => ({ dlqFull: o.counted >= o.max_size, maxSize: o.max_size }));
}

export interface DeadLetterRow {
  delivery_id: string;
  webhook_id: string;
  event_id: string;
  tenant_id: string;
  last_error: string;
  attempts: number;
  created_at: Date;
}

export interface DeadLetterFilter {
  tenantId: string | undefined;
  webhookId: string | undefined;
  since: string | undefined;
  until: string | undefined;
}

/** Newest first; `total` counts every match. */
export async function listDeadLetters(
  db: Kysely<Database>,
  filter: DeadLetterFilter & { limit: number; offset: number },
): Promise<{ rows: DeadLetterRow[]; total: number }> {
  let base = db.selectFrom('dlq');
  if (filter.tenantId !== undefined) base = base.where('tenant_id', '=', filter.tenantId);
  if (filter.webhookId !== undefined) base = base.where('webhook_id', '=', filter.webhookId);
  if (filter.since !== undefined) base = base.where('created_at', '>=', new Date(filter.since));
  if (filter.until !== undefined) base = base.where('created_at', '<', new Date(filter.until));
  return pageWithTotal(
    base,
    (q) =>
      q
        .select([
          'delivery_id',
          'webhook_id',
          'event_id',
          'tenant_id',
          'last_error',
          'attempts',
          'created_at',
        ])
        // The order of the (tenant_id, created_at desc, delivery_id) and (created_at desc, delivery_id) indexes.
        .orderBy('created_at', 'desc')
        .orderBy('delivery_id', 'asc'),
    filter,
  );
}

export interface RemovedDeadLetter {
  delivery_id: string;
  tenant_id: string;
  webhook_id: string;
  /** Whether the entry's webhook is enabled now. */
  webhook_enabled: boolean;
}

/** Deletes one entry (row-locked until commit) and says whose it was; undefined when there is none. */
export async function removeDeadLetter(
  db: Kysely<Database>,
  deliveryId: string,
  tenantId: string | undefined,
): Promise<RemovedDeadLetter | undefined> {
  const { rows } = await sql<RemovedDeadLetter>`
    with removed as (
      delete from dlq
       where delivery_id = ${deliveryId} ${tenantId === undefined ? sql`` : sql`and tenant_id = ${tenantId}`}
      returning delivery_id, tenant_id, webhook_id
    )
    select r.delivery_id, r.tenant_id, r.webhook_id, w.enabled as webhook_enabled
      from removed r join webhooks w on w.id = r.webhook_id
  `.execute(db);
  return rows[0];
}

function deadLetterConditions(filter: DeadLetterFilter): RawBuilder<unknown> {
  const parts = [sql`true`];
  if (filter.tenantId !== undefined) parts.push(sql`q.tenant_id = ${filter.tenantId}`);
  if (filter.webhookId !== undefined) parts.push(sql`q.webhook_id = ${filter.webhookId}`);
  if (filter.since !== undefined) parts.push(sql`q.created_at >= ${new Date(filter.since)}`);
  if (filter.until !== undefined) parts.push(sql`q.created_at < ${new Date(filter.until)}`);
  return sql.join(parts, sql` and `);
}

/**
 * One batch of a bulk retry: takes up to `batchSize` matching entries of enabled webhooks that
 * were dead-lettered no later than `startedAt` (so an entry that dies again during the bulk
 * retry is not taken twice), oldest first, skipping rows another transaction holds; deletes them
 * and starts each delivery's new series. The caller enqueues the returned deliveries.
 */
export async function requeueDeadLetterBatch(
  db: Kysely<Database>,
  filter: DeadLetterFilter,
  startedAt: DatabaseTime,
  batchSize: number,
): Promise<RequeuedRow[]> {
  const { rows } = await sql<RequeuedRow>`
    with picked as (
      select q.delivery_id
        from dlq q
        join webhooks w on w.id = q.webhook_id and w.enabled
       where ${deadLetterConditions(filter)} and q.created_at <= ${startedAt}::timestamptz
       order by q.created_at, q.delivery_id
       limit ${batchSize}
         for update of q skip locked
    ), removed as (
      delete from dlq q using picked where q.delivery_id = picked.delivery_id
      returning q.delivery_id
    )
    update deliveries d set ${NEW_SERIES}
      from removed
     where d.id = removed.delivery_id and d.status = 'dead'
    returning d.id, d.tenant_id
  `.execute(db);
  return rows;
}

/** Entries matching the filter whose webhook is disabled: a bulk retry leaves them. */
export async function countDeadLettersOfDisabledWebhooks(
  db: Kysely<Database>,
  filter: DeadLetterFilter,
): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    select count(*)::int as n
      from dlq q join webhooks w on w.id = q.webhook_id and not w.enabled
     where ${deadLetterConditions(filter)}
  `.execute(db);
  return rows[0]!.n;
}

/** Deletes the delivery's DLQ entry, if it has one. */
export async function deleteDeadLetterOf(db: Kysely<Database>, deliveryId: string): Promise<void> {
  await sql`delete from dlq where delivery_id = ${deliveryId}`.execute(db);
}
