/**
 * The retention sweep's statements, each one batch, each taking the database or a transaction.
 * sql/runbook/retention.sql counts what these would delete; keep the two in step.
 *
 * cutoff: `now() - RETENTION_DAYS`, read from the database once per run and passed back as its
 *   own text (microseconds intact), so every batch of a run draws the same line.
 * finished delivery: `succeeded`, or `dead` without a `dlq` row (its dead letter was deleted).
 *   `pending`, `failed` and `paused` deliveries are waiting for something and are never touched.
 * removable event: created before the cutoff, with no `dlq` row, and every delivery finished
 *   and unchanged since the cutoff. It leaves with its deliveries and their attempts. An event
 *   with one unfinished delivery keeps all of them: `GET /events/:id` shows an event with every
 *   delivery or not at all. A job still naming a finished delivery does not keep it: the job
 *   skips a delivery that is not due or is gone (src/delivery/enqueue.ts).
 * old attempt: a `delivery_attempts` row made before the cutoff whose delivery is finished.
 *   Attempts of a dead letter, or of a delivery still in a series, are kept with it.
 * expired idempotency key: older than the 24 h it is honoured for; every reader already
 *   ignores it (src/events/event-repository.ts).
 *
 * Every batch picks its rows with `for update skip locked`, oldest first, through an index on
 * the time column, so several worker processes sweeping at once share the work instead of
 * waiting on each other, and no statement touches more than one batch of rows (and, for
 * events, their deliveries and attempts).
 */
import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { Database } from '../db/database.js';

/** A timestamptz as the database's text, microseconds intact (a Date would drop them). */
export type DatabaseTime = string & { readonly __brand: 'DatabaseTime' };

/** Where the previous batch stopped: the last row it picked, in (time, id) order. */
export interface Position {
  at: DatabaseTime;
  id: string;
}

/** The 24 h an Idempotency-Key is honoured for (src/events/event-repository.ts). */
const IDEMPOTENCY_KEY_TTL = sql`interval '24 hours'`;

/** `now() - days`, by the database's clock. */
export async function retentionCutoff(db: Kysely<Database>, days: number): Promise<DatabaseTime> {
  const { rows } = await sql<{ cutoff: DatabaseTime }>`
    select (now() - ${days} * interval '1 day')::text as cutoff
  `.execute(db);
  return rows[0]!.cutoff;
}

/**
 * A batch that would wait on a lock for long gives up instead (the run fails, and the next one
 * tries again): its own locks must not hold anyone else up. Call it first in the transaction.
 */
export async function limitLockWaits(trx: Kysely<Database>): Promise<void> {
  await sql`select set_config('lock_timeout', '2s', true)`.execute(trx);
}

/** The condition "event `e` is removable" (see the glossary above). */
function removableEvent(cutoff: DatabaseTime): RawBuilder<unknown> {
  return sql`
    e.created_at < ${cutoff}::timestamptz
    and not exists (select 1 from dlq q where q.event_id = e.id)
    and not exists (
          select 1 from deliveries d
           where d.event_id = e.id
             and (   d.status not in ('succeeded', 'dead')
                  or d.updated_at >= ${cutoff}::timestamptz
                  or exists (select 1 from dlq q where q.delivery_id = d.id)))`;
}

/** `and (time, id) > position`: a batch that starts where the previous one of the run stopped. */
function afterPosition(
  position: Position | undefined,
  timeColumn: 'e.created_at' | 'a.attempted_at',
  idColumn: 'e.id' | 'a.id',
  idType: 'uuid' | 'bigint',
): RawBuilder<unknown> {
  if (position === undefined) return sql``;
  const [time, id] = [sql.ref(timeColumn), sql.ref(idColumn)];
  // The first comparison lets the index on the time column start at the position; the second
  // is the exact one (rows with the same time are common: a batch of events shares its now()).
  return sql`and ${time} >= ${position.at}::timestamptz
             and (${time}, ${id}) > (${position.at}::timestamptz, ${position.id}::${sql.raw(idType)})`;
}

export interface PickedEvent {
  id: string;
  created_at: DatabaseTime;
  /** How many deliveries it has: what deleting it costs besides its own row (and their attempts). */
  deliveries: number;
}

/** Up to `limit` removable events after `position`, oldest first, row-locked until commit. */
export async function pickRemovableEvents(
  trx: Kysely<Database>,
  cutoff: DatabaseTime,
  position: Position | undefined,
  limit: number,
): Promise<PickedEvent[]> {
  const { rows } = await sql<PickedEvent>`
    select e.id, e.created_at::text as created_at,
           (select count(*)::int from deliveries d where d.event_id = e.id) as deliveries
      from events e
     where ${removableEvent(cutoff)}
           ${afterPosition(position, 'e.created_at', 'e.id', 'uuid')}
     order by e.created_at, e.id
     limit ${limit}
       for update of e skip locked
  `.execute(trx);
  return rows;
}

/**
 * Locks the deliveries of these events until commit, skipping any another transaction holds;
 * returns the ids it locked. Every writer that could make a delivery wanted again (a resend, a
 * recovery, a DLQ entry) updates its row, so from here until commit none of them can.
 */
export async function lockDeliveriesOfEvents(
  trx: Kysely<Database>,
  eventIds: readonly string[],
): Promise<string[]> {
  const { rows } = await sql<{ id: string }>`
    select d.id from deliveries d where d.event_id = any(${eventIds}::uuid[]) for update of d skip locked
  `.execute(trx);
  return rows.map((row) => row.id);
}

export interface RemovedEvents {
  events: number;
  deliveries: number;
  delivery_attempts: number;
}

/**
 * Deletes those of `eventIds` that are still removable, by a fresh look (a delivery resent
 * since they were picked keeps its event), and whose every delivery is in `lockedDeliveryIds`;
 * with their deliveries and attempts. Deleting the children explicitly gives exact counts; the
 * foreign keys' cascades then find nothing left to do.
 */
export async function deleteEvents(
  trx: Kysely<Database>,
  cutoff: DatabaseTime,
  eventIds: readonly string[],
  lockedDeliveryIds: readonly string[],
): Promise<RemovedEvents> {
  const { rows } = await sql<RemovedEvents>`
    with doomed as materialized (
      select e.id
        from events e
       where e.id = any(${eventIds}::uuid[])
         and ${removableEvent(cutoff)}
         and not exists (select 1 from deliveries d
                          where d.event_id = e.id and d.id <> all(${lockedDeliveryIds}::uuid[]))
    ), gone_attempts as (
      delete from delivery_attempts a
       using deliveries d
       where d.event_id in (select id from doomed) and a.delivery_id = d.id
      returning a.id
    ), gone_deliveries as (
      delete from deliveries d where d.event_id in (select id from doomed) returning d.id
    ), gone_events as (
      delete from events e where e.id in (select id from doomed) returning e.id
    )
    select (select count(*) from gone_events)::int as events,
           (select count(*) from gone_deliveries)::int as deliveries,
           (select count(*) from gone_attempts)::int as delivery_attempts
  `.execute(trx);
  return rows[0]!;
}

export interface RemovedAttempts {
  deleted: number;
  /** The last row deleted, where the next batch starts; undefined when none was. */
  last: Position | undefined;
}

/**
 * Deletes up to `limit` old attempts after `position` (see the glossary), oldest first. The
 * delivery's status is read, not locked: a resend starting at that moment may lose attempts
 * older than the period, which nothing reads to decide anything.
 */
export async function deleteOldAttempts(
  db: Kysely<Database>,
  cutoff: DatabaseTime,
  position: Position | undefined,
  limit: number,
): Promise<RemovedAttempts> {
  const { rows } = await sql<{ deleted: number; last_at: DatabaseTime | null; last_id: string | null }>`
    with picked as (
      select a.id
        from delivery_attempts a
       where a.attempted_at < ${cutoff}::timestamptz
             ${afterPosition(position, 'a.attempted_at', 'a.id', 'bigint')}
         and exists (select 1 from deliveries d
                      where d.id = a.delivery_id and d.status in ('succeeded', 'dead'))
         and not exists (select 1 from dlq q where q.delivery_id = a.delivery_id)
       order by a.attempted_at, a.id
       limit ${limit}
         for update of a skip locked
    ), gone as (
      delete from delivery_attempts a using picked where a.id = picked.id
      returning a.id, a.attempted_at
    )
    select count(*)::int as deleted,
           (array_agg(attempted_at::text order by attempted_at desc, id desc))[1] as last_at,
           (array_agg(id order by attempted_at desc, id desc))[1]::text as last_id
      from gone
  `.execute(db);
  const row = rows[0]!;
  return {
    deleted: row.deleted,
    last: row.last_at !== null && row.last_id !== null ? { at: row.last_at, id: row.last_id } : undefined,
  };
}

/** Deletes up to `limit` expired idempotency keys, oldest first; returns how many. */
export async function deleteExpiredIdempotencyKeys(db: Kysely<Database>, limit: number): Promise<number> {
  const result = await sql`
    with picked as (
      select tenant_id, key
        from idempotency_keys
       where created_at < now() - ${IDEMPOTENCY_KEY_TTL}
       order by created_at
       limit ${limit}
         for update skip locked
    )
    delete from idempotency_keys k
     using picked
     where k.tenant_id = picked.tenant_id and k.key = picked.key
  `.execute(db);
  return Number(result.numAffectedRows ?? 0);
}
