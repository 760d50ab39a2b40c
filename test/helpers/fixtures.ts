/**
 * Rows for delivery tests, inserted with SQL (no API involved), and the delivery's first job
 * enqueued in the same transaction — the way ingestion does it.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../src/db/database.js';
import { enqueueDeliveries } from '../../src/delivery/enqueue.js';
import { ensureTenant } from '../../src/tenancy/tenant-repository.js';
import { waitFor } from './process.js';

export const generateSecret = (): string => `whsec_${randomBytes(24).toString('base64')}`;

export async function createTenant(db: Kysely<Database>, id = `t-${randomBytes(4).toString('hex')}`) {
  await ensureTenant(db, id);
  return id;
}

export interface WebhookFixture {
  tenantId: string;
  url: string;
  secret?: string;
  previousSecret?: string;
  previousSecretExpiresAt?: Date;
  timeoutMs?: number;
  enabled?: boolean;
  eventTypes?: string[];
}

export async function createWebhook(db: Kysely<Database>, fixture: WebhookFixture) {
  const id = randomUUID();
  const secret = fixture.secret ?? generateSecret();
  await sql`
    insert into webhooks (id, tenant_id, url, event_types, secret, previous_secret,
                          previous_secret_expires_at, timeout_ms, enabled)
    values (${id}, ${fixture.tenantId}, ${fixture.url}, ${fixture.eventTypes ?? ['*']}, ${secret},
            ${fixture.previousSecret ?? null}, ${fixture.previousSecretExpiresAt ?? null},
            ${fixture.timeoutMs ?? null}, ${fixture.enabled ?? true})
  `.execute(db);
  return { id, secret };
}

export async function createEvent(
  db: Kysely<Database>,
  fixture: { tenantId: string; type?: string; payload?: Record<string, unknown> },
) {
  const id = randomUUID();
  const { rows } = await sql<{ created_at: Date }>`
    insert into events (id, tenant_id, type, payload)
    values (${id}, ${fixture.tenantId}, ${fixture.type ?? 'order.created'},
            ${JSON.stringify(fixture.payload ?? { order_id: 42 })}::jsonb)
    returning created_at
  `.execute(db);
  return { id, createdAt: rows[0]!.created_at };
}

/** A delivery row and its first job, committed together. */
export async function createDelivery(
  db: Kysely<Database>,
  fixture: { tenantId: string; webhookId: string; eventId: string; enqueue?: boolean },
): Promise<string> {
  const id = randomUUID();
  await db.transaction().execute(async (trx) => {
    await sql`
      insert into deliveries (id, event_id, webhook_id, tenant_id)
      values (${id}, ${fixture.eventId}, ${fixture.webhookId}, ${fixture.tenantId})
    `.execute(trx);
    if (fixture.enqueue ?? true) await enqueueDeliveries(trx, [{ deliveryId: id, attempt: 1 }]);
  });
  return id;
}

/** Tenant (made if needed), webhook, event and a queued delivery to `url`. */
export async function queueDelivery(
  db: Kysely<Database>,
  fixture: Partial<WebhookFixture> & {
    url: string;
    type?: string;
    payload?: Record<string, unknown>;
    enqueue?: boolean;
  },
) {
  const tenantId = fixture.tenantId ?? (await createTenant(db));
  const webhook = await createWebhook(db, { ...fixture, tenantId });
  const event = await createEvent(db, { tenantId, type: fixture.type, payload: fixture.payload });
  const deliveryId = await createDelivery(db, {
    tenantId,
    webhookId: webhook.id,
    eventId: event.id,
    enqueue: fixture.enqueue,
  });
  return { tenantId, webhookId: webhook.id, secret: webhook.secret, eventId: event.id, deliveryId, event };
}

export interface DeliveryRow {
  id: string;
  status: string;
  attempt_count: number;
  next_attempt_at: Date | null;
  last_error: string | null;
  last_status_code: number | null;
  succeeded_at: Date | null;
}

export async function deliveryRow(db: Kysely<Database>, id: string): Promise<DeliveryRow | undefined> {
  const { rows } = await sql<DeliveryRow>`
    select id, status, attempt_count, next_attempt_at, last_error, last_status_code, succeeded_at
      from deliveries where id = ${id}
  `.execute(db);
  return rows[0];
}

/**
 * Polls the delivery's row until its status is one of `statuses`, and returns that row; fails
 * after `timeoutMs`, naming `what` it waited for.
 */
export function waitForDeliveryStatus(
  db: Kysely<Database>,
  deliveryId: string,
  statuses: readonly string[],
  timeoutMs = 15_000,
  what = `delivery ${deliveryId} to reach ${statuses.join('/')}`,
): Promise<DeliveryRow> {
  return waitFor(
    async () => {
      const row = await deliveryRow(db, deliveryId);
      return row && statuses.includes(row.status) ? row : undefined;
    },
    timeoutMs,
    what,
  );
}

export interface AttemptRow {
  attempt_number: number;
  attempted_at: Date;
  status_code: number | null;
  error: string | null;
  duration_ms: number;
  response_body: string | null;
  response_headers: Record<string, string> | null;
}

export async function attemptRows(db: Kysely<Database>, deliveryId: string): Promise<AttemptRow[]> {
  const { rows } = await sql<AttemptRow>`
    select attempt_number, attempted_at, status_code, error, duration_ms, response_body, response_headers
      from delivery_attempts where delivery_id = ${deliveryId}
     order by attempted_at, id
  `.execute(db);
  return rows;
}

export async function dlqRows(db: Kysely<Database>, deliveryId: string) {
  const { rows } = await sql<{
    delivery_id: string;
    last_error: string;
    attempts: number;
    webhook_id: string;
  }>`
    select delivery_id, last_error, attempts, webhook_id from dlq where delivery_id = ${deliveryId}
  `.execute(db);
  return rows;
}

/**
 * The delivery's jobs in graphile-worker (waiting, running or failed); `payload` is the job's
 * entry for this delivery (`{id, attempt}`), `deliveries` how many the job names.
 */
export async function jobsOf(db: Kysely<Database>, deliveryId: string) {
  // The public `jobs` view leaves out the payload; the private table has it.
  const { rows } = await sql<{
    id: string;
    payload: { id: string; attempt: number };
    deliveries: number;
    run_at: Date;
    key: string | null;
    locked_at: Date | null;
  }>`
    select j.id, e.entry as payload, json_array_length(j.payload->'deliveries') as deliveries,
           j.run_at, j.key, j.locked_at
      from graphile_worker._private_jobs j
      cross join lateral json_array_elements(j.payload->'deliveries') as e(entry)
     where e.entry->>'id' = ${deliveryId}
     order by j.id
  `.execute(db);
  return rows;
}

/**
 * Queues `count` deliveries of one event to one webhook with SQL, rows and jobs in one transaction
 * (`enqueue: false`: the rows alone, no jobs).
 */
export async function queueMany(
  db: Kysely<Database>,
  tenantId: string,
  webhookId: string,
  count: number,
  options: { enqueue?: boolean } = {},
): Promise<string[]> {
  const event = await createEvent(db, { tenantId, type: 'bulk.queued' });
  const ids = Array.from({ length: count }, () => randomUUID());
  await db.transaction().execute(async (trx) => {
    await sql`insert into deliveries (id, event_id, webhook_id, tenant_id)
              select unnest(${ids}::uuid[]), ${event.id}, ${webhookId}, ${tenantId}`.execute(trx);
    if (options.enqueue === false) return;
    for (let i = 0; i < ids.length; i += 5000) {
      await enqueueDeliveries(
        trx,
        ids.slice(i, i + 5000).map((id) => ({ deliveryId: id, attempt: 1, tenantId })),
      );
    }
  });
  return ids;
}
