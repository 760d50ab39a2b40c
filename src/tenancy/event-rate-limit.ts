/**
 * max_events_per_sec, for a tenant as a whole across every API process: a sliding one-second
 * window of ten 100 ms slots kept in `event_rate_windows`, read and updated with the tenant's
 * row locked — in a short transaction of its own just before a batch is stored (ingestion
 * service), or inside the keyed request's own transaction. The limit is read from `quotas` in
 * the same statement, so an UPDATE quotas in psql applies to the next admission.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/database.js';

export const SLOT_MS = 100;
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

interface WindowRow {
  tenant_id: string;
  limit: number;
  slot_numbers: string[];
  slot_counts: number[];
  now_ms: string;
}

/** The pure part: given the ring and the time, how many to admit and the new ring. */
export function admitInWindow(
  ring: { slotNumbers: number[]; slotCounts: number[] },
  limit: number,
  nowMs: number,
  requested: number,
): { admitted: number; used: number; slotNumbers: number[]; slotCounts: number[]; resetSeconds: number } {
  const current = Math.floor(nowMs / SLOT_MS);
  const slotNumbers = [...ring.slotNumbers];
  const slotCounts = [...ring.slotCounts];
  let used = 0;
  let oldestLive: number | undefined;
  for (let i = 0; i < SLOTS; i++) {
    const slot = slotNumbers[i] ?? 0;
    if (slot > current - SLOTS && slot <= current && (slotCounts[i] ?? 0) > 0) {
      used += slotCounts[i] ?? 0;
      if (oldestLive === undefined || slot < oldestLive) oldestLive = slot;
    }
  }
  const admitted = Math.max(0, Math.min(requested, limit - used));
  const index = current % SLOTS;
  if (slotNumbers[index] !== current) {
    slotNumbers[index] = current;
    slotCounts[index] = 0;
  }
  slotCounts[index] = (slotCounts[index] ?? 0) + admitted;
  if (admitted > 0 && oldestLive === undefined) oldestLive = current;
  // The window frees room when its oldest counted slot falls out of it.
  const freesAtMs = oldestLive === undefined ? nowMs : (oldestLive + SLOTS) * SLOT_MS;
  const resetSeconds = Math.max(1, Math.ceil((freesAtMs - nowMs) / 1000));
  return { admitted, used: used + admitted, slotNumbers, slotCounts, resetSeconds };
}

/**
 * Admits up to `requested.get(tenant)` events per tenant, inside `trx` (the caller's ingest
 * transaction, so counts and events commit or roll back together). Tenants must exist.
 */
export async function admitEvents(
  trx: Kysely<Database>,
  requested: ReadonlyMap<string, number>,
): Promise<Map<string, Admission>> {
  const tenantIds = [...requested.keys()].sort(); // a fixed lock order: no deadlocks between processes
  const result = new Map<string, Admission>();
  if (tenantIds.length === 0) return result;
  await sql`
    insert into event_rate_windows (tenant_id)
    select unnest(${tenantIds}::text[]) on conflict do nothing
  `.execute(trx);
  const rows = await sql<WindowRow>`
    select w.tenant_id, q.max_events_per_sec as limit, w.slot_numbers, w.slot_counts,
           floor(extract(epoch from clock_timestamp()) * 1000)::bigint as now_ms
      from event_rate_windows w
      join quotas q on q.tenant_id = w.tenant_id
     where w.tenant_id = any(${tenantIds}::text[])
     order by w.tenant_id
       for update of w
  `.execute(trx);
  const updates: { tenant_id: string; slot_numbers: number[]; slot_counts: number[] }[] = [];
  for (const row of rows.rows) {
    const outcome = admitInWindow(
      { slotNumbers: row.slot_numbers.map(Number), slotCounts: row.slot_counts },
      row.limit,
      Number(row.now_ms),
      requested.get(row.tenant_id) ?? 0,
    );
    result.set(row.tenant_id, {
      tenantId: row.tenant_id,
      admitted: outcome.admitted,
      limit: row.limit,
      remaining: Math.max(0, row.limit - outcome.used),
      resetSeconds: outcome.resetSeconds,
    });
    if (outcome.admitted > 0) {
      updates.push({
        tenant_id: row.tenant_id,
        slot_numbers: outcome.slotNumbers,
        slot_counts: outcome.slotCounts,
      });
    }
  }
  if (updates.length > 0) {
    await sql`
      update event_rate_windows w
         set slot_numbers = array(select json_array_elements_text(u.slot_numbers)::bigint),
             slot_counts = array(select json_array_elements_text(u.slot_counts)::int),
             updated_at = now()
        from json_to_recordset(${JSON.stringify(updates)}::json)
          as u(tenant_id text, slot_numbers json, slot_counts json)
       where w.tenant_id = u.tenant_id
    `.execute(trx);
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
