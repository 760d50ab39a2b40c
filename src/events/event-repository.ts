/**
 * The only place with queries on `events` and `idempotency_keys`. Every function takes the
 * database or a transaction; `tenantId` undefined means "any tenant" (an admin).
 */
import { sql, type Kysely, type Selectable } from 'kysely';
import type { Database } from '../db/database.js';
import { pageWithTotal } from '../db/page.js';
import type { LoadedDelivery } from '../delivery/delivery-repository.js';
import { deliveryJobCtes } from '../delivery/enqueue.js';
import type { EventTable } from './event.table.js';

export type EventRow = Selectable<EventTable>;
export type EventSummaryRow = Omit<EventRow, 'payload'>;

export interface NewEvent {
  id: string;
  tenantId: string;
  type: string;
  payload: Record<string, unknown>;
  idempotencyKey: string | null;
  /** `event_types` entries that match `type` (see event-type-match.ts). */
  filters: string[];
  /** W3C traceparent of the request that sent it, carried into its deliveries' jobs (not stored). */
  traceparent?: string;
}

export interface CreatedDelivery {
  id: string;
  event_id: string;
  webhook_id: string;
  tenant_id: string;
  /** Leased to the caller (`storeEventBatch`'s `lease`): what sending it needs; null when queued as a job. */
  leased: LeasedFields | null;
}

/** What the caller needs to send a delivery it leased at ingestion (beside what it already has). */
export type LeasedFields = Pick<
  LoadedDelivery,
  | 'url'
  | 'signature_type'
  | 'secret'
  | 'previous_secret'
  | 'previous_secret_expires_at'
  | 'secret_key_id'
  | 'timeout_ms'
  | 'failing_since'
  | 'event_created_at'
>;

/**
 * The events, one `pending` delivery per event and enabled webhook of its tenant whose
 * `event_types` overlaps the event's matching filters, and their jobs (one per tenant and up to
 * MAX_JOB_DELIVERIES, fair rank, one `add_jobs` call): one statement, one round trip, whatever
 * the number of events. Answers the deliveries in event order, then webhook creation order.
 *
 * With `lease`, up to `lease.limit` of the new deliveries are leased to `lease.owner` instead
 * of queued (`take_delivery_leases`, each tenant up to max_concurrent_deliveries): the caller
 * sends those itself once the statement has committed, without a job, a fetch and a load. A
 * lease names its holder, so should it die before recording them, the stale-worker sweep
 * queues them (worker-heartbeat).
 */
export async function storeEventBatch(
  db: Kysely<Database>,
  events: readonly NewEvent[],
  lease?: { owner: string; limit: number },
): Promise<CreatedDelivery[]> {
  const rows = events.map((e, ord) => ({
    id: e.id,
    tenant_id: e.tenantId,
    type: e.type,
    payload: e.payload,
    idempotency_key: e.idempotencyKey,
    filters: e.filters,
    traceparent: e.traceparent ?? null,
    ord,
  }));
  const result = await sql<
    Omit<CreatedDelivery, 'leased'> & Partial<LeasedFields> & { is_leased: boolean }
  >`-- prepared: store_event_batch
    with input as materialized (
      select * from json_to_recordset(${JSON.stringify(rows)}::json)
        as e(id uuid, tenant_id text, type text, payload json, idempotency_key text, filters text[],
             traceparent text, ord int)
    ),
    new_events as (
      insert into events (id, tenant_id, type, payload, idempotency_key)
      select id, tenant_id, type, payload, idempotency_key from input
    ),
    matched as materialized (
      select gen_random_uuid() as delivery_id, e.id as event_id, w.id as webhook_id, e.tenant_id,
             e.traceparent, (row_number() over (order by e.ord, w.created_at, w.id))::int as ord,
             w.ordering = 'fifo' as fifo, row_number() over (partition by w.id order by e.ord) as fifo_rank
        from input e
        join webhooks w on w.tenant_id = e.tenant_id and w.enabled and w.event_types && e.filters
                       and (w.filter is null or filter_matches(w.filter, e.type, now(), e.payload))
    ),
    fifo_numbers as (
      -- FIFO webhooks' next numbers; their rows stay locked until commit, so numbers follow
      -- commit order (migration 020).
      update webhooks w set fifo_next = w.fifo_next + c.n
        from (select webhook_id, count(*) as n from matched where fifo group by webhook_id) c
       where w.id = c.webhook_id
      returning w.id, w.fifo_next - c.n as base
    ),
    new_deliveries as (
      insert into deliveries (id, event_id, webhook_id, tenant_id, fifo_seq)
      select m.delivery_id, m.event_id, m.webhook_id, m.tenant_id, n.base + m.fifo_rank
        from matched m left join fifo_numbers n on n.id = m.webhook_id
    ),
    leases as materialized (
      -- A FIFO webhook's delivery waits for those before it: it goes through a job.
      select delivery_id from take_delivery_leases(${lease?.owner ?? ''},
               array(select delivery_id from matched where not fifo order by ord limit ${lease?.limit ?? 0}),
               array(select tenant_id from matched where not fifo order by ord limit ${lease?.limit ?? 0}))
       where taken
    ),
    src as (
      select delivery_id, 1 as attempt, tenant_id, null::int as priority, null::timestamptz as run_at,
             traceparent, ord
        from matched
       where delivery_id not in (select delivery_id from leases)
    ),
    ${deliveryJobCtes('src')}
    select m.delivery_id as id, m.event_id, m.webhook_id, m.tenant_id, l.delivery_id is not null as is_leased,
           w.url, w.signature_type, w.secret, w.previous_secret, w.previous_secret_expires_at, w.secret_key_id,
           w.timeout_ms, w.failing_since, now() as event_created_at
      from matched m
      left join leases l on l.delivery_id = m.delivery_id
      left join webhooks w on w.id = m.webhook_id and l.delivery_id is not null
     where (select count(*) from added_jobs) >= 0
     order by m.ord
  `.execute(db);
  return result.rows.map(
    ({
      is_leased,
      url,
      signature_type,
      secret,
      previous_secret,
      previous_secret_expires_at,
      secret_key_id,
      timeout_ms,
      failing_since,
      event_created_at,
      ...created
    }) => ({
      ...created,
      leased: is_leased
        ? {
            url: url!,
            signature_type: signature_type!,
            secret: secret!,
            previous_secret: previous_secret ?? null,
            previous_secret_expires_at: previous_secret_expires_at ?? null,
            secret_key_id: secret_key_id ?? null,
            timeout_ms: timeout_ms ?? null,
            failing_since: failing_since ?? null,
            event_created_at: event_created_at!,
          }
        : null,
    }),
  );
}

/**
 * Takes the key for this request, or learns that another request holds it. Inserting the
 * primary key makes a concurrent request with the same key wait until this transaction ends.
 * A row older than 24 h is taken over as if it were not there.
 */
export async function claimIdempotencyKey(
  db: Kysely<Database>,
  tenantId: string,
  key: string,
  eventId: string,
): Promise<boolean> {
  const result = await sql`
    insert into idempotency_keys (tenant_id, key, event_id, response)
    values (${tenantId}, ${key}, ${eventId}, '{}')
    on conflict (tenant_id, key) do update
      set event_id = excluded.event_id, response = excluded.response, created_at = now()
      where idempotency_keys.created_at < now() - interval '24 hours'
    returning event_id
  `.execute(db);
  return result.rows.length === 1;
}

export async function saveIdempotentResponse(
  db: Kysely<Database>,
  tenantId: string,
  key: string,
  response: Record<string, unknown>,
): Promise<void> {
  await sql`
    update idempotency_keys set response = ${JSON.stringify(response)}::jsonb
    where tenant_id = ${tenantId} and key = ${key}
  `.execute(db);
}

/** The first answer given for the key, if it is younger than 24 h. */
export async function findIdempotentResponse(
  db: Kysely<Database>,
  tenantId: string,
  key: string,
): Promise<Record<string, unknown> | undefined> {
  const result = await sql<{ response: Record<string, unknown> }>`
    select response from idempotency_keys
    where tenant_id = ${tenantId} and key = ${key} and created_at >= now() - interval '24 hours'
  `.execute(db);
  return result.rows[0]?.response;
}

export async function findEvent(
  db: Kysely<Database>,
  id: string,
  tenantId: string | undefined,
): Promise<EventRow | undefined> {
  let query = db.selectFrom('events').selectAll().where('id', '=', id);
  if (tenantId !== undefined) query = query.where('tenant_id', '=', tenantId);
  return query.executeTakeFirst();
}

export interface EventFilter {
  tenantId: string | undefined;
  type: string | undefined;
  since: string | undefined;
  limit: number;
  offset: number;
}

/** Newest first, without payloads. */
export async function listEvents(
  db: Kysely<Database>,
  filter: EventFilter,
): Promise<{ rows: EventSummaryRow[]; total: number }> {
  let base = db.selectFrom('events');
  if (filter.tenantId !== undefined) base = base.where('tenant_id', '=', filter.tenantId);
  if (filter.type !== undefined) base = base.where('type', '=', filter.type);
  if (filter.since !== undefined) base = base.where('created_at', '>=', new Date(filter.since));
  return pageWithTotal(
    base,
    (q) =>
      q
        .select(['id', 'tenant_id', 'type', 'idempotency_key', 'created_at'])
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc'),
    filter,
  );
}
