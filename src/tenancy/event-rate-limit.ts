/**
 * max_events_per_sec, for a tenant as a whole across every API process: a sliding one-second
 * window of ten 100 ms slots kept in `event_rate_windows`, read and updated with the tenant's
 * row locked by one SQL function (`admit_events`) — alone, just before a batch is stored
 * (ingestion service), or inside the keyed request's own transaction. The limit is read from
 * `quotas` in the same call, so an UPDATE quotas in psql applies to the next admission.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/database.js';

export const SLOTS = 10;

export interface Admission {
  tenantId: string;
  /** How many of the requested events may be stored now. */
  admitted: number;
  limit: number;
  /** Left in the current window after this admission. */
  remaining: number;
  /** Seconds until the window has room again (for Retry-After and RateLimit-Reset); ≥ 1. */
  resetSeconds: number;
}

/**
 * Admits up to `requested.get(tenant)` events per tenant: one call of the SQL function
 * `admit_events` (migrations/004), which locks the tenants' window rows in a fixed order (no
 * deadlocks between processes), counts, and takes. In the caller's transaction (the keyed
 * path, so counts and the event commit or roll back together), or alone with `waitForDisk:
 * false` (the batch path: its own short transaction, the rows locked for one statement only).
 * Tenants must exist.
 */
export async function admitEvents(
  db: Kysely<Database>,
  requested: ReadonlyMap<string, number>,
  options: { waitForDisk?: boolean; nowMs?: number } = {},
): Promise<Map<string, Admission>> {
  const result = new Map<string, Admission>();
  if (requested.size === 0) return result;
  const { rows } = await sql<{
    tenant_id: string;
    admitted: number;
    max_per_sec: number;
    remaining: number;
    reset_seconds: number;
  }>`-- prepared: admit_events
    select * from admit_events(${[...requested.keys()]}::text[], ${[...requested.values()]}::int[],
                               ${options.nowMs ?? null}::bigint, ${options.waitForDisk ?? true})
  `.execute(db);
  for (const row of rows) {
    result.set(row.tenant_id, {
      tenantId: row.tenant_id,
      admitted: row.admitted,
      limit: row.max_per_sec,
      remaining: row.remaining,
      resetSeconds: row.reset_seconds,
    });
  }
  return result;
}

/** Events accepted in the last second (GET /quotas `current_usage.events_sent`). */
export async function eventsInWindow(db: Kysely<Database>, tenantId: string): Promise<number> {
  const row = await sql<{ n: number }>`
    select coalesce(sum(c), 0)::int as n
      from event_rate_windows w,
           unnest(w.slot_numbers, w.slot_counts) as s(slot, c)
     where w.tenant_id = ${tenantId}
       and s.slot > floor(extract(epoch from clock_timestamp()) * 10)::bigint - ${SLOTS}
  `.execute(db);
  return row.rows[0]?.n ?? 0;
}
