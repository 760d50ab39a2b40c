/**
 * Keeps the Kysely `Database` interface in step with the real schema. `columns` must name every
 * column of every table in the interface (the type checker refuses a missing or extra one), and
 * the test compares it with information_schema on a migrated database.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.js';
import { withTestDatabase } from '../helpers/database.js';

type ColumnsOf<T> = { [K in keyof T]-?: true };
const columns: { [T in keyof Database]: ColumnsOf<Database[T]> } = {
  portal_links: { token_hash: true, tenant_id: true, created_at: true, expires_at: true, used_at: true },
  tenants: {
    id: true,
    created_at: true,
    tokens_valid_after: true,
    unknown_event_types: true,
    catalog_version: true,
  },
  quotas: {
    tenant_id: true,
    max_events_per_sec: true,
    max_concurrent_deliveries: true,
    max_dlq_size: true,
    updated_at: true,
  },
  webhooks: {
    id: true,
    tenant_id: true,
    url: true,
    description: true,
    filter: true,
    ordering: true,
    fifo_next: true,
    event_types: true,
    signature_type: true,
    secret: true,
    previous_secret: true,
    previous_secret_expires_at: true,
    secret_key_id: true,
    public_key: true,
    timeout_ms: true,
    enabled: true,
    disabled_reason: true,
    disabled_at: true,
    failing_since: true,
    created_at: true,
    updated_at: true,
  },
  events: { id: true, tenant_id: true, type: true, payload: true, idempotency_key: true, created_at: true },
  idempotency_keys: { tenant_id: true, key: true, event_id: true, response: true, created_at: true },
  deliveries: {
    id: true,
    event_id: true,
    webhook_id: true,
    tenant_id: true,
    status: true,
    attempt_count: true,
    next_attempt_at: true,
    last_error: true,
    last_status_code: true,
    created_at: true,
    updated_at: true,
    succeeded_at: true,
    fifo_seq: true,
  },
  delivery_attempts: {
    id: true,
    delivery_id: true,
    attempt_number: true,
    attempted_at: true,
    status_code: true,
    error: true,
    duration_ms: true,
    response_body: true,
    response_headers: true,
  },
  dlq: {
    delivery_id: true,
    tenant_id: true,
    webhook_id: true,
    event_id: true,
    last_error: true,
    attempts: true,
    created_at: true,
  },
  audit_log: {
    id: true,
    at: true,
    actor: true,
    action: true,
    object_type: true,
    object_id: true,
    tenant_id: true,
    request_id: true,
    details: true,
  },
  worker_heartbeats: { worker_id: true, hostname: true, pid: true, started_at: true, last_seen_at: true },
  event_rate_windows: { tenant_id: true, slot_numbers: true, slot_counts: true, updated_at: true },
  delivery_leases: { delivery_id: true, tenant_id: true, worker_id: true, acquired_at: true },
  service_settings: { name: true, value: true, updated_at: true },
  event_types: {
    tenant_id: true,
    name: true,
    description: true,
    schema: true,
    deprecated: true,
    created_at: true,
    updated_at: true,
  },
};

let ctx: Awaited<ReturnType<typeof withTestDatabase>>;
beforeAll(async () => {
  ctx = await withTestDatabase();
});
afterAll(async () => {
  await ctx?.cleanup();
});

it('the Database interface names exactly the tables and columns of the migrated schema', async () => {
  const rows = await ctx.handle.pool.query<{ table_name: string; column_name: string }>(
    `select table_name, column_name from information_schema.columns
      where table_schema = 'public' and table_name <> 'schema_migrations'
      order by table_name, column_name`,
  );
  const actual: Record<string, string[]> = {};
  for (const row of rows.rows) (actual[row.table_name] ??= []).push(row.column_name);
  const expected = Object.fromEntries(
    Object.entries(columns)
      .map(([table, cols]) => [table, Object.keys(cols).sort()] as const)
      .sort(([a], [b]) => a.localeCompare(b)),
  );
  expect(actual).toEqual(expected);
});

it('every table of ours carries a comment for operators', async () => {
  const rows = await ctx.handle.pool.query<{ relname: string }>(
    `select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and c.relkind = 'r' and c.relname <> 'schema_migrations'
        and obj_description(c.oid, 'pg_class') is null`,
  );
  expect(rows.rows.map((r) => r.relname)).toEqual([]);
});
