import { type Database, createDatabase, type DatabaseHandle } from '../../src/db/database.js';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { concurrentDeliveries } from '../../src/tenancy/concurrency-cap.js';
import { createWebhook, queueMany } from '../helpers/fixtures.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService({ NUM_WORKERS: '0' });
});
afterAll(async () => {
  await svc?.stop();
});

describe('GET /quotas/:tenant_id', () => {
  it('shows the defaults and current usage for a new tenant', async () => {
    const res = await svc.call('GET', '/quotas/fresh', { token: await svc.token('fresh') });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      tenant_id: 'fresh',
      limits: { max_events_per_sec: 100, max_concurrent_deliveries: 50, max_dlq_size: 100 },
      current_usage: { events_sent: 0, concurrent_deliveries: 0, dlq_count: 0 },
      dlq_full: false,
    });
  });

  it('a tenant token naming another tenant gets 403; an admin may read any; an unknown tenant is 404', async () => {
    expect((await svc.call('GET', '/quotas/other', { token: await svc.token('fresh') })).status).toBe(403);
    expect(
      (await svc.call('GET', '/quotas/fresh', { token: await svc.token('ops', { admin: true }) })).status,
    ).toBe(200);
    expect(
      (await svc.call('GET', '/quotas/nobody', { token: await svc.token('ops', { admin: true }) })).status,
    ).toBe(404);
  });

  it('an UPDATE quotas in SQL shows in the next answer', async () => {
    const token = await svc.token('sqlchanged');
    await svc.call('GET', '/quotas/sqlchanged', { token });
    await sql`update quotas set max_events_per_sec = 200 where tenant_id = 'sqlchanged'`.execute(
      svc.service.database.db,
    );
    const res = await svc.call('GET', '/quotas/sqlchanged', { token });
    expect(res.body.limits.max_events_per_sec).toBe(200);
  });
});

describe('PUT /quotas/:tenant_id', () => {
  it('needs an admin token', async () => {
    const res = await svc.call('PUT', '/quotas/fresh', {
      token: await svc.token('fresh'),
      body: { max_dlq_size: 5 },
    });
    expect(res.status).toBe(403);
  });

  it('changes the limits and writes an audit row', async () => {
    const admin = await svc.token('ops', { admin: true });
    const res = await svc.call('PUT', '/quotas/acme', {
      token: admin,
      body: { max_events_per_sec: 250, max_concurrent_deliveries: 7 },
      headers: { 'x-request-id': 'req-quota-1' },
    });
    expect(res.status).toBe(200);
    expect(res.body.limits).toEqual({
      max_events_per_sec: 250,
      max_concurrent_deliveries: 7,
      max_dlq_size: 100,
    });
    const audit = await svc.service.database.db
      .selectFrom('audit_log')
      .selectAll()
      .where('action', '=', 'quota.updated')
      .where('object_id', '=', 'acme')
      .executeTakeFirstOrThrow();
    expect(audit).toMatchObject({ actor: 'ops:admin', tenant_id: 'acme', request_id: 'req-quota-1' });
    expect(audit.details).toMatchObject({
      before: { max_events_per_sec: 100, max_concurrent_deliveries: 50 },
      after: { max_events_per_sec: 250, max_concurrent_deliveries: 7 },
    });
  });

  it('a plain UPDATE quotas in SQL is audited too, naming the database role', async () => {
    const db = svc.service.database.db;
    await sql`update quotas set max_dlq_size = 42 where tenant_id = 'acme'`.execute(db);
    // Setting a limit to the value it has changes nothing, and leaves no row.
    await sql`update quotas set max_dlq_size = 42 where tenant_id = 'acme'`.execute(db);
    const rows = await db
      .selectFrom('audit_log')
      .selectAll()
      .where('action', '=', 'quota.updated')
      .where('object_id', '=', 'acme')
      .where(sql<boolean>`details->'after'->>'max_dlq_size' = '42'`)
      .execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ actor: 'db:postgres', tenant_id: 'acme', request_id: null });
    expect(rows[0]!.details).toMatchObject({ before: { max_dlq_size: 100 }, after: { max_dlq_size: 42 } });
  });

  it('rejects unknown fields, negative numbers and an empty body with details', async () => {
    const admin = await svc.token('ops', { admin: true });
    const res = await svc.call('PUT', '/quotas/acme', {
      token: admin,
      body: { max_events_per_sec: -1, colour: 'red' },
    });
    expect(res.status).toBe(400);
    expect(res.body.error.details.map((d: { field: string }) => d.field).sort()).toEqual([
      '/colour',
      '/max_events_per_sec',
    ]);
    expect((await svc.call('PUT', '/quotas/acme', { token: admin, body: {} })).status).toBe(400);
  });
});

/** The lease function loading a batch calls, for one delivery (as a load would, in one statement). */
async function acquireDeliveryLease(
  db: Kysely<Database>,
  lease: { tenantId: string; deliveryId: string; workerId: string },
): Promise<boolean> {
  const { rows } = await sql<{ held: boolean }>`
    select taken as held
      from take_delivery_leases(${lease.workerId}, array[${lease.deliveryId}::uuid], array[${lease.tenantId}::text])
  `.execute(db);
  return rows[0]?.held === true;
}

async function releaseDeliveryLease(db: Kysely<Database>, deliveryId: string): Promise<void> {
  await sql`delete from delivery_leases where delivery_id = ${deliveryId}::uuid`.execute(db);
}

describe('delivery leases (max_concurrent_deliveries)', () => {
  let a: DatabaseHandle;
  let b: DatabaseHandle;
  beforeAll(() => {
    a = createDatabase(svc.database.url, { max: 6 });
    b = createDatabase(svc.database.url, { max: 6 });
  });
  afterAll(async () => {
    await a.close();
    await b.close();
  });

  async function seedDeliveries(tenant: string, count: number): Promise<string[]> {
    const db = svc.service.database.db;
    await svc.call('GET', `/quotas/${tenant}`, { token: await svc.token(tenant) });
    const webhook = await createWebhook(db, { tenantId: tenant, url: 'http://127.0.0.1:9/' });
    // The rows alone: the leases are taken by hand here, not by a worker.
    return queueMany(db, tenant, webhook.id, count, { enqueue: false });
  }

  it('two pools racing for 40 leases of a tenant limited to 5 get exactly 5', async () => {
    const ids = await seedDeliveries('capped', 40);
    await sql`update quotas set max_concurrent_deliveries = 5 where tenant_id = 'capped'`.execute(a.db);
    const held = await Promise.all(
      ids.map((id, i) =>
        acquireDeliveryLease(i % 2 ? a.db : b.db, {
          tenantId: 'capped',
          deliveryId: id,
          workerId: `w${i % 2}`,
        }),
      ),
    );
    expect(held.filter(Boolean)).toHaveLength(5);
    expect(await concurrentDeliveries(a.db, 'capped')).toBe(5);

    // Releasing one makes room for exactly one more; lowering the limit stops new ones at once.
    const holder = ids[held.indexOf(true)]!;
    await releaseDeliveryLease(a.db, holder);
    const waiting = ids.filter((_, i) => !held[i]);
    expect(
      await acquireDeliveryLease(a.db, { tenantId: 'capped', deliveryId: waiting[0]!, workerId: 'w0' }),
    ).toBe(true);
    expect(
      await acquireDeliveryLease(a.db, { tenantId: 'capped', deliveryId: waiting[1]!, workerId: 'w0' }),
    ).toBe(false);
    await sql`update quotas set max_concurrent_deliveries = 1 where tenant_id = 'capped'`.execute(a.db);
    await releaseDeliveryLease(a.db, waiting[0]!);
    expect(
      await acquireDeliveryLease(b.db, { tenantId: 'capped', deliveryId: waiting[2]!, workerId: 'w1' }),
    ).toBe(false);
  });

  it('leases are counted through the index, never by reading the table (dead rows pile up between vacuums)', async () => {
    const ids = await seedDeliveries('churn', 300);
    // Churn: leases taken and given back, as deliveries do, leaving dead rows behind.
    for (const id of ids.slice(0, 200)) {
      await acquireDeliveryLease(a.db, { tenantId: 'churn', deliveryId: id, workerId: 'w0' });
      await releaseDeliveryLease(a.db, id);
    }
    const scans = await a.db.connection().execute(async (conn) => {
      await sql`begin`.execute(conn);
      try {
        await sql`select * from take_delivery_leases('w0', ${ids.slice(200)}::uuid[],
                    array_fill('churn'::text, array[100]))`.execute(conn);
        const { rows } = await sql<{ seq_scan: string }>`
          select seq_scan from pg_stat_xact_user_tables where relname = 'delivery_leases'`.execute(conn);
        return Number(rows[0]!.seq_scan);
      } finally {
        await sql`rollback`.execute(conn);
      }
    });
    expect(scans).toBe(0);
  });

  it('shows in GET /quotas current_usage.concurrent_deliveries', async () => {
    const ids = await seedDeliveries('busy', 3);
    for (const id of ids)
      await acquireDeliveryLease(a.db, { tenantId: 'busy', deliveryId: id, workerId: 'w0' });
    const res = await svc.call('GET', '/quotas/busy', { token: await svc.token('busy') });
    expect(res.body.current_usage.concurrent_deliveries).toBe(3);
  });
});
