/**
 * Data retention against a real PostgreSQL: old rows inserted with SQL, timestamps in the past.
 * Finished events older than the period leave with their deliveries and attempts, in batches,
 * even when a job still names one (it skips what is gone); whatever a DLQ entry or an unfinished
 * delivery needs stays; so does everything recent.
 * sql/runbook/retention.sql counts exactly what the sweep then deletes. The service runs the
 * sweep in worker-role processes only, and not at all with RETENTION_DAYS=0.
 */
import { randomUUID } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.js';
import { enqueueDeliveries } from '../../src/delivery/enqueue.js';
import { removeExpiredRows, type RetentionRun } from '../../src/retention/retention-sweep.js';
import { withTestDatabase } from '../helpers/database.js';
import { createTenant, createWebhook } from '../helpers/fixtures.js';
import { waitFor } from '../helpers/process.js';
import { runbookPsql } from '../helpers/runbook.js';
import { startTestService, type TestService } from '../helpers/service.js';

interface SeededDelivery {
  status: 'pending' | 'succeeded' | 'failed' | 'dead' | 'paused';
  /** Days since the delivery last changed; the event's age when unset. */
  updatedDaysAgo?: number;
  /** One attempt per entry, made this many days ago. */
  attemptsDaysAgo?: number[];
  /** A `dlq` row (status must be dead). */
  inDlq?: boolean;
  /** A waiting `deliver` job naming it at its next attempt, due tomorrow. */
  withJob?: boolean;
}

interface SeededEvent {
  eventId: string;
  deliveryIds: string[];
}

/**
 * One event, `daysAgo` old, with the given deliveries, their attempts, DLQ rows and jobs, in one
 * transaction: a sweep running meanwhile sees the whole event or none of it.
 */
function seedEvent(
  db: Kysely<Database>,
  owner: { tenantId: string; webhookId: string },
  daysAgo: number,
  deliveries: SeededDelivery[] = [],
): Promise<SeededEvent> {
  return db.transaction().execute((trx) => seedEventRows(trx, owner, daysAgo, deliveries));
}

async function seedEventRows(
  db: Kysely<Database>,
  owner: { tenantId: string; webhookId: string },
  daysAgo: number,
  deliveries: SeededDelivery[],
): Promise<SeededEvent> {
  const eventId = randomUUID();
  const ago = (days: number) => sql`now() - ${days} * interval '1 day'`;
  await sql`
    insert into events (id, tenant_id, type, payload, created_at)
    values (${eventId}, ${owner.tenantId}, 'order.created', '{"n": 1}', ${ago(daysAgo)})
  `.execute(db);
  const deliveryIds: string[] = [];
  for (const delivery of deliveries) {
    const id = randomUUID();
    deliveryIds.push(id);
    await sql`
      insert into deliveries (id, event_id, webhook_id, tenant_id, status, attempt_count, created_at, updated_at)
      values (${id}, ${eventId}, ${owner.webhookId}, ${owner.tenantId}, ${delivery.status},
              ${delivery.attemptsDaysAgo?.length ?? 0}, ${ago(daysAgo)},
              ${ago(delivery.updatedDaysAgo ?? daysAgo)})
    `.execute(db);
    for (const [i, days] of (delivery.attemptsDaysAgo ?? []).entries()) {
      await sql`
        insert into delivery_attempts (delivery_id, attempt_number, attempted_at, status_code, error, duration_ms)
        values (${id}, ${i + 1}, ${ago(days)}, 503, 'HTTP 503: Service Unavailable', 12)
      `.execute(db);
    }
    if (delivery.inDlq) {
      await sql`
        insert into dlq (delivery_id, tenant_id, webhook_id, event_id, last_error, attempts, created_at)
        values (${id}, ${owner.tenantId}, ${owner.webhookId}, ${eventId}, 'HTTP 503: Service Unavailable',
                ${delivery.attemptsDaysAgo?.length ?? 0}, ${ago(delivery.updatedDaysAgo ?? daysAgo)})
      `.execute(db);
    }
    if (delivery.withJob) {
      await enqueueDeliveries(db, [
        {
          deliveryId: id,
          attempt: (delivery.attemptsDaysAgo?.length ?? 0) + 1,
          tenantId: owner.tenantId,
          runAt: new Date(Date.now() + 86_400_000),
        },
      ]);
    }
  }
  return { eventId, deliveryIds };
}

async function seedIdempotencyKey(db: Kysely<Database>, tenantId: string, hoursAgo: number): Promise<void> {
  await sql`
    insert into idempotency_keys (tenant_id, key, event_id, response, created_at)
    values (${tenantId}, ${randomUUID()}, ${randomUUID()}, '{"status": 202}', now() - ${hoursAgo} * interval '1 hour')
  `.execute(db);
}

const TABLES = ['events', 'deliveries', 'delivery_attempts', 'dlq', 'idempotency_keys', 'audit_log'] as const;

async function rowCounts(db: Kysely<Database>): Promise<Record<(typeof TABLES)[number], number>> {
  const { rows } = await sql<Record<(typeof TABLES)[number], number>>`
    select ${sql.join(TABLES.map((table) => sql`(select count(*)::int from ${sql.table(table)}) as ${sql.ref(table)}`))}
  `.execute(db);
  return rows[0]!;
}

async function exists(db: Kysely<Database>, table: 'events' | 'deliveries', id: string): Promise<boolean> {
  const { rows } = await sql`select 1 from ${sql.table(table)} where id = ${id}`.execute(db);
  return rows.length === 1;
}

async function attemptsOf(db: Kysely<Database>, deliveryId: string): Promise<number[]> {
  const { rows } = await sql<{ days: number }>`
    select round(extract(epoch from now() - attempted_at) / 86400)::int as days
      from delivery_attempts where delivery_id = ${deliveryId} order by attempted_at
  `.execute(db);
  return rows.map((row) => row.days);
}

/** sql/runbook/retention.sql through the real psql, as the runbook says to run it: its first table. */
async function runbookCounts(url: string, retention: string): Promise<Record<string, number>> {
  const { code, stdout, stderr } = await runbookPsql(url, 'retention.sql', { retention });
  if (code !== 0) throw new Error(`psql failed: ${stderr}\n${stdout}`);
  const counts: Record<string, number> = {};
  for (const match of stdout.matchAll(
    /^\s*(events|deliveries|delivery_attempts|idempotency_keys)\s+\|\s+(\d+)\s*$/gm,
  )) {
    counts[match[1]!] = Number(match[2]);
  }
  return counts;
}

let ctx: Awaited<ReturnType<typeof withTestDatabase>>;
let db: Kysely<Database>;
let owner: { tenantId: string; webhookId: string };

beforeEach(async () => {
  await ctx?.cleanup();
  ctx = await withTestDatabase();
  db = ctx.handle.db;
  const tenantId = await createTenant(db);
  const webhook = await createWebhook(db, { tenantId, url: 'https://hooks.example.test/in' });
  owner = { tenantId, webhookId: webhook.id };
});
afterAll(async () => {
  await ctx?.cleanup();
});

describe('removeExpiredRows (RETENTION_DAYS=30)', () => {
  it('removes old finished events with their deliveries and attempts, in batches; keeps what is still needed and everything recent', async () => {
    // 25 finished events from 40 days ago, each one delivery with two attempts: all go.
    const finished: SeededEvent[] = [];
    for (let i = 0; i < 25; i++) {
      finished.push(await seedEvent(db, owner, 40, [{ status: 'succeeded', attemptsDaysAgo: [40, 40] }]));
    }
    // A dead letter whose DLQ entry was deleted is finished too; an event without deliveries also goes.
    const purgedDeadLetter = await seedEvent(db, owner, 40, [{ status: 'dead', attemptsDaysAgo: [40, 39] }]);
    const noDeliveries = await seedEvent(db, owner, 40);

    // Kept: a dead letter still in the DLQ — event, delivery, DLQ row and every attempt.
    const inDlq = await seedEvent(db, owner, 40, [
      { status: 'dead', attemptsDaysAgo: [40, 39, 38], inDlq: true, updatedDaysAgo: 38 },
    ]);
    // Kept: one delivery still pending (with its job) keeps the event and its other delivery;
    // that finished delivery's own attempts older than the period go (12: two attempt batches).
    const halfDone = await seedEvent(db, owner, 40, [
      { status: 'succeeded', attemptsDaysAgo: Array.from({ length: 12 }, () => 40) },
      { status: 'pending', attemptsDaysAgo: [40], withJob: true },
    ]);
    // Kept: failed with a retry scheduled, paused behind a disabled webhook, and succeeded but
    // changed within the period (its recent attempt stays).
    const failed = await seedEvent(db, owner, 40, [
      { status: 'failed', attemptsDaysAgo: [40], withJob: true },
    ]);
    const paused = await seedEvent(db, owner, 40, [{ status: 'paused', attemptsDaysAgo: [40] }]);
    // Goes: succeeded with a job still naming it (the job skips a delivery that is gone).
    const jobWaiting = await seedEvent(db, owner, 40, [
      { status: 'succeeded', attemptsDaysAgo: [40], withJob: true },
    ]);
    const recentlyResent = await seedEvent(db, owner, 40, [
      { status: 'succeeded', attemptsDaysAgo: [40, 2], updatedDaysAgo: 2 },
    ]);
    // Kept: recent events, finished or not.
    const recent = await seedEvent(db, owner, 10, [{ status: 'succeeded', attemptsDaysAgo: [10] }]);
    const recentDead = await seedEvent(db, owner, 29, [{ status: 'dead', attemptsDaysAgo: [29] }]);
    // Idempotency keys: three past their 24 h go, one from an hour ago stays.
    for (const hours of [48, 72, 25, 1]) await seedIdempotencyKey(db, owner.tenantId, hours);
    await sql`
      insert into audit_log (at, actor, action, object_type, object_id, tenant_id)
      values (now() - interval '400 days', 'system', 'webhook.disabled', 'webhook', ${owner.webhookId}, ${owner.tenantId})
    `.execute(db);

    const before = await rowCounts(db);
    const predicted = await runbookCounts(ctx.database.url, '30 days');
    const run = await removeExpiredRows(db, { retentionDays: 30, batchSize: 10 });
    console.log(`retention run: ${JSON.stringify(run)}`);

    expect(run.complete).toBe(true);
    expect(run.deleted).toEqual({
      events: 28,
      deliveries: 27,
      // 25 × 2, 2 and 1 (jobWaiting) with their events; then, on their own, the old attempts of
      // finished deliveries whose events stay: 12 (halfDone), 1 (recentlyResent).
      delivery_attempts: 53 + 13,
      idempotency_keys: 3,
    });
    // Up to 10 rows a batch, counting each event and its deliveries: the 25 with one delivery
    // go 5 at a time, then the last three (5 rows). 13 attempts: 10, then 3.
    expect(run.batches).toEqual({ events: 6, delivery_attempts: 2, idempotency_keys: 1 });
    expect(predicted).toEqual(run.deleted);

    const after = await rowCounts(db);
    expect(after).toEqual({
      events: before.events - 28,
      deliveries: before.deliveries - 27,
      delivery_attempts: before.delivery_attempts - 66,
      dlq: before.dlq,
      idempotency_keys: 1,
      audit_log: before.audit_log,
    });
    for (const gone of [...finished, purgedDeadLetter, noDeliveries, jobWaiting]) {
      expect(await exists(db, 'events', gone.eventId)).toBe(false);
      for (const id of gone.deliveryIds) expect(await exists(db, 'deliveries', id)).toBe(false);
    }
    for (const kept of [inDlq, halfDone, failed, paused, recentlyResent, recent, recentDead]) {
      expect(await exists(db, 'events', kept.eventId)).toBe(true);
      for (const id of kept.deliveryIds) expect(await exists(db, 'deliveries', id)).toBe(true);
    }
    expect(await attemptsOf(db, inDlq.deliveryIds[0]!)).toEqual([40, 39, 38]);
    expect(await attemptsOf(db, halfDone.deliveryIds[0]!)).toEqual([]);
    expect(await attemptsOf(db, halfDone.deliveryIds[1]!)).toEqual([40]);
    expect(await attemptsOf(db, failed.deliveryIds[0]!)).toEqual([40]);
    expect(await attemptsOf(db, jobWaiting.deliveryIds[0]!)).toEqual([]);
    expect(await attemptsOf(db, paused.deliveryIds[0]!)).toEqual([40]);
    expect(await attemptsOf(db, recentlyResent.deliveryIds[0]!)).toEqual([2]);
    expect(await attemptsOf(db, recent.deliveryIds[0]!)).toEqual([10]);
    expect(await attemptsOf(db, recentDead.deliveryIds[0]!)).toEqual([29]);
    // The jobs are untouched, the one naming jobWaiting's deleted delivery too.
    const { rows: named } = await sql<{ id: string }>`
      select item->>'id' as id
        from graphile_worker._private_jobs j
        join graphile_worker._private_tasks t on t.id = j.task_id and t.identifier = 'deliver',
             json_array_elements(j.payload->'deliveries') item
    `.execute(db);
    expect(named.map((row) => row.id).sort()).toEqual(
      [halfDone.deliveryIds[1]!, failed.deliveryIds[0]!, jobWaiting.deliveryIds[0]!].sort(),
    );

    // Nothing is left for a second run.
    const again = await removeExpiredRows(db, { retentionDays: 30, batchSize: 10 });
    expect(again.deleted).toEqual({ events: 0, deliveries: 0, delivery_attempts: 0, idempotency_keys: 0 });
    expect(await runbookCounts(ctx.database.url, '30 days')).toEqual(again.deleted);
  });

  it('a delivery another transaction holds (a resend starting) keeps its event until the next run', async () => {
    const held = await seedEvent(db, owner, 40, [{ status: 'succeeded' }]);
    const free = await seedEvent(db, owner, 40, [{ status: 'succeeded', attemptsDaysAgo: [40] }]);
    const other = new pg.Client({ connectionString: ctx.database.url });
    await other.connect();
    try {
      await other.query('begin');
      await other.query('select 1 from deliveries where id = $1 for update', [held.deliveryIds[0]]);
      const run = await removeExpiredRows(db, { retentionDays: 30, batchSize: 10 });
      expect(run.deleted.events).toBe(1);
      expect(await exists(db, 'events', held.eventId)).toBe(true);
      expect(await exists(db, 'events', free.eventId)).toBe(false);
      // The resend commits: the delivery is pending again, and its event stays.
      await other.query(`update deliveries set status = 'pending', updated_at = now() where id = $1`, [
        held.deliveryIds[0],
      ]);
      await other.query('commit');
    } finally {
      await other.end();
    }
    const next = await removeExpiredRows(db, { retentionDays: 30, batchSize: 10 });
    expect(next.deleted.events).toBe(0);
    expect(await exists(db, 'events', held.eventId)).toBe(true);
    expect(await exists(db, 'deliveries', held.deliveryIds[0]!)).toBe(true);
  });

  it('two sweeps at once share the rows and delete each once', async () => {
    for (let i = 0; i < 60; i++) {
      await seedEvent(db, owner, 40, [{ status: 'succeeded', attemptsDaysAgo: [40] }]);
    }
    const runs = await Promise.all([
      removeExpiredRows(db, { retentionDays: 30, batchSize: 5 }),
      removeExpiredRows(db, { retentionDays: 30, batchSize: 5 }),
    ]);
    const total = (key: 'events' | 'delivery_attempts') =>
      runs.reduce((sum, run: RetentionRun) => sum + run.deleted[key], 0);
    expect(total('events')).toBe(60);
    expect(total('delivery_attempts')).toBe(60);
    expect((await rowCounts(db)).events).toBe(0);
  });

  it('a wide fan-out: a batch holds at most batchSize events and deliveries together, and one event at least', async () => {
    const fourEach = [];
    for (let i = 0; i < 3; i++) {
      fourEach.push(
        await seedEvent(
          db,
          owner,
          40,
          Array.from({ length: 4 }, () => ({ status: 'succeeded' as const, attemptsDaysAgo: [40] })),
        ),
      );
    }
    await seedEvent(
      db,
      owner,
      40,
      Array.from({ length: 12 }, () => ({ status: 'succeeded' as const, attemptsDaysAgo: [40] })),
    );
    const deliveriesPerBatch: number[] = [];
    const run = await removeExpiredRows(db, {
      retentionDays: 30,
      batchSize: 10,
      onDeleted: (table, rows) => {
        if (table === 'deliveries') deliveriesPerBatch.push(rows);
      },
    });
    // 5 + 5 rows; then 5 (the next event's 13 would pass 10); then the wide event alone.
    expect(deliveriesPerBatch).toEqual([8, 4, 12]);
    expect(run.batches.events).toBe(3);
    expect(run.deleted).toMatchObject({ events: 4, deliveries: 24, delivery_attempts: 24 });
  });

  it('stops before its next batch when asked to, and the next run carries on', async () => {
    for (let i = 0; i < 12; i++) await seedEvent(db, owner, 40, [{ status: 'succeeded' }]);
    let asked = 0;
    // Two rows an event (its own and its delivery's): two events a batch of five rows.
    const cut = await removeExpiredRows(db, { retentionDays: 30, batchSize: 5, stopping: () => ++asked > 1 });
    expect(cut).toMatchObject({ complete: false, deleted: { events: 2 }, batches: { events: 1 } });
    const rest = await removeExpiredRows(db, { retentionDays: 30, batchSize: 5 });
    expect(rest).toMatchObject({ complete: true, deleted: { events: 10 }, batches: { events: 5 } });
  });

  it('RETENTION_DAYS=0 removes nothing', async () => {
    await seedEvent(db, owner, 4000, [{ status: 'succeeded', attemptsDaysAgo: [4000] }]);
    await seedIdempotencyKey(db, owner.tenantId, 1000);
    const before = await rowCounts(db);
    const run = await removeExpiredRows(db, { retentionDays: 0, batchSize: 1 });
    expect(run.deleted).toEqual({ events: 0, deliveries: 0, delivery_attempts: 0, idempotency_keys: 0 });
    expect(await rowCounts(db)).toEqual(before);
  });
});

describe('the service runs the sweep every RETENTION_SWEEP_MS in worker-role processes', () => {
  const services: TestService[] = [];
  afterAll(async () => {
    for (const svc of services) await svc.stop();
  });

  async function serviceWithOldRows(env: Record<string, string>) {
    const svc = await startTestService({ NUM_WORKERS: '0', RETENTION_SWEEP_MS: '50', ...env });
    services.push(svc);
    const serviceDb = svc.service.database.db;
    const tenantId = await createTenant(serviceDb);
    const webhook = await createWebhook(serviceDb, { tenantId, url: 'https://hooks.example.test/in' });
    const old = await seedEvent(serviceDb, { tenantId, webhookId: webhook.id }, 40, [
      { status: 'succeeded', attemptsDaysAgo: [40, 40] },
    ]);
    return { svc, serviceDb, old };
  }

  const deletedMetric = async (svc: TestService, table: string) =>
    (await svc.service.metrics.retentionDeleted.get()).values.find((v) => v.labels.table === table)?.value;

  it('ROLE=worker removes old rows, counts them in webhook_retention_deleted_total, and stops cleanly', async () => {
    const { svc, serviceDb, old } = await serviceWithOldRows({ ROLE: 'worker' });
    await waitFor(
      async () => ((await exists(serviceDb, 'events', old.eventId)) ? undefined : true),
      10_000,
      'the sweep to remove the old event',
    );
    expect(await deletedMetric(svc, 'events')).toBe(1);
    expect(await deletedMetric(svc, 'deliveries')).toBe(1);
    expect(await deletedMetric(svc, 'delivery_attempts')).toBe(2);
    const metrics = await svc.service.metrics.registry.metrics();
    expect(metrics).toContain('webhook_retention_deleted_total{table="events"} 1');
    await svc.service.stop();
  });

  it('ROLE=api, and RETENTION_DAYS=0 in a worker, remove nothing', async () => {
    const api = await serviceWithOldRows({ ROLE: 'api' });
    const keepForever = await serviceWithOldRows({ ROLE: 'worker', RETENTION_DAYS: '0' });
    // Ten sweep intervals and more.
    await new Promise((resolve) => setTimeout(resolve, 750));
    for (const { svc, serviceDb, old } of [api, keepForever]) {
      expect(await exists(serviceDb, 'events', old.eventId)).toBe(true);
      expect(await attemptsOf(serviceDb, old.deliveryIds[0]!)).toEqual([40, 40]);
      expect(await deletedMetric(svc, 'events')).toBe(0);
    }
  });
});
