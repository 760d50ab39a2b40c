/**
 * What the portal's pages read beyond the features' services: figures over the last 24 hours
 * (endpoint health, deliveries per minute, attempt durations) and the event log with its
 * deliveries' statuses. Reads only; every change goes through the features' services.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import type { DeliveryStatus } from '../delivery/delivery.table.js';

export interface EndpointHealth {
  webhook_id: string;
  attempts: number;
  successes: number;
  last_attempt_at: Date | null;
  last_status_code: number | null;
  last_error: string | null;
}

/** Per webhook of the tenant: attempts and successes over the last 24 h, and the last attempt. */
export async function endpointHealth(
  db: Kysely<Database>,
  tenantId: string,
): Promise<Map<string, EndpointHealth>> {
  const result = await sql<EndpointHealth>`
    select d.webhook_id,
           count(*)::int as attempts,
           count(*) filter (where a.error is null)::int as successes,
           max(a.attempted_at) as last_attempt_at,
           (array_agg(a.status_code order by a.attempted_at desc))[1] as last_status_code,
           (array_agg(a.error order by a.attempted_at desc))[1] as last_error
    from delivery_attempts a
    join deliveries d on d.id = a.delivery_id
    where d.tenant_id = ${tenantId} and a.attempted_at > now() - interval '24 hours'
    group by d.webhook_id
  `.execute(db);
  return new Map(result.rows.map((row) => [row.webhook_id, row]));
}

export interface MinuteCount {
  minute: Date;
  succeeded: number;
  failed: number;
}

/** Attempts per minute over the last 24 h, by outcome (minutes without any are left out). */
export async function attemptsPerMinute(db: Kysely<Database>, tenantId: string): Promise<MinuteCount[]> {
  const result = await sql<MinuteCount>`
    select date_trunc('minute', a.attempted_at) as minute,
           count(*) filter (where a.error is null)::int as succeeded,
           count(*) filter (where a.error is not null)::int as failed
    from delivery_attempts a
    join deliveries d on d.id = a.delivery_id
    where d.tenant_id = ${tenantId} and a.attempted_at > now() - interval '24 hours'
    group by 1 order by 1
  `.execute(db);
  return result.rows;
}

export interface HourDuration {
  hour: Date;
  p95_ms: number;
}

/** p95 attempt duration per hour over the last 24 h, and over the whole day. */
export async function attemptDurations(
  db: Kysely<Database>,
  tenantId: string,
): Promise<{ hours: HourDuration[]; p95Ms: number | null }> {
  const result = await sql<{ hour: Date | null; p95_ms: number }>`
    select date_trunc('hour', a.attempted_at) as hour,
           percentile_cont(0.95) within group (order by a.duration_ms)::float8 as p95_ms
    from delivery_attempts a
    join deliveries d on d.id = a.delivery_id
    where d.tenant_id = ${tenantId} and a.attempted_at > now() - interval '24 hours'
    group by grouping sets ((1), ())
  `.execute(db);
  const hours = result.rows.filter((r): r is HourDuration => r.hour !== null);
  hours.sort((a, b) => a.hour.getTime() - b.hour.getTime());
  const total = result.rows.find((r) => r.hour === null);
  return { hours, p95Ms: total ? total.p95_ms : null };
}

export interface EventLogFilter {
  type: string | undefined;
  status: DeliveryStatus | undefined;
  since: Date | undefined;
  until: Date | undefined;
  limit: number;
}

export interface EventLogRow {
  id: string;
  type: string;
  created_at: Date;
  statuses: DeliveryStatus[];
}

/** The tenant's newest events matching the filter, each with its deliveries' statuses. */
export async function eventLog(
  db: Kysely<Database>,
  tenantId: string,
  filter: EventLogFilter,
): Promise<EventLogRow[]> {
  let query = db
    .selectFrom('events as e')
    .where('e.tenant_id', '=', tenantId)
    .select(['e.id', 'e.type', 'e.created_at'])
    .select(
      sql<
        DeliveryStatus[]
      >`coalesce((select array_agg(d.status::text order by d.created_at) from deliveries d where d.event_id = e.id), '{}')`.as(
        'statuses',
      ),
    )
    .orderBy('e.created_at', 'desc')
    .orderBy('e.id', 'desc')
    .limit(filter.limit);
  if (filter.type !== undefined) query = query.where('e.type', '=', filter.type);
  if (filter.since !== undefined) query = query.where('e.created_at', '>=', filter.since);
  if (filter.until !== undefined) query = query.where('e.created_at', '<', filter.until);
  if (filter.status !== undefined) {
    const status = filter.status;
    query = query.where(({ exists, selectFrom }) =>
      exists(
        selectFrom('deliveries as d')
          .select('d.id')
          .whereRef('d.event_id', '=', 'e.id')
          .where('d.status', '=', status),
      ),
    );
  }
  return query.execute();
}

/** The newest deliveries of one of the tenant's webhooks. */
export async function recentDeliveries(
  db: Kysely<Database>,
  tenantId: string,
  webhookId: string,
  limit: number,
) {
  return db
    .selectFrom('deliveries')
    .where('tenant_id', '=', tenantId)
    .where('webhook_id', '=', webhookId)
    .select(['id', 'event_id', 'status', 'attempt_count', 'last_error', 'last_status_code', 'created_at'])
    .orderBy('created_at', 'desc')
    .limit(limit)
    .execute();
}

/** The delivery of an event to one webhook (a test event's, to show it). */
export async function deliveryOfEventTo(db: Kysely<Database>, eventId: string, webhookId: string) {
  const row = await db
    .selectFrom('deliveries')
    .where('event_id', '=', eventId)
    .where('webhook_id', '=', webhookId)
    .select('id')
    .executeTakeFirst();
  return row?.id;
}
