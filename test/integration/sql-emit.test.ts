/**
 * hookrelay.emit(): an application emits an event in its own transaction, against the real
 * service (workers included) and a real receiver. The event and its deliveries exist if and only
 * if that transaction commits.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/process.js';
import { receiverPool } from '../helpers/receiver.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
let app: pg.Client;
const receivers = receiverPool();
const suffix = randomBytes(4).toString('hex');
const APP_ROLE = `app_user_${suffix}`;
const OTHER_ROLE = `other_user_${suffix}`;

beforeAll(async () => {
  svc = await startTestService({ RETRY_SCHEDULE: '0.05' });
  app = new pg.Client({ connectionString: svc.database.url });
  await app.connect();
  // The application's own table, in the same database.
  await app.query('create table orders (id text primary key, amount int not null)');
  await app.query(`create role ${APP_ROLE} nologin; grant hookrelay_emitter to ${APP_ROLE}`);
  await app.query(`create role ${OTHER_ROLE} nologin`);
  await app.query(`grant all on orders to ${APP_ROLE}, ${OTHER_ROLE}`);
});
afterEach(async () => {
  await app.query('reset role').catch(() => undefined);
  await receivers.closeAll();
});
afterAll(async () => {
  await app?.end();
  await svc?.stop();
  // Roles belong to the server, not the database: drop them with it.
  const admin = new pg.Client({ connectionString: svc.database.url.replace(/\/[^/]*$/, '/postgres') });
  await admin.connect();
  await admin.query(`drop role if exists ${APP_ROLE}`).catch(() => undefined);
  await admin.query(`drop role if exists ${OTHER_ROLE}`).catch(() => undefined);
  await admin.end();
});

async function webhookTo(tenant: string, url: string, extra: Record<string, unknown> = {}): Promise<string> {
  const res = await svc.call('POST', '/webhooks', {
    token: await svc.token(tenant),
    body: { url, event_types: ['order.*'], ...extra },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id as string;
}

async function count(query: string, params: unknown[]): Promise<number> {
  const { rows } = await app.query<{ n: number }>(`select count(*)::int as n from (${query}) q`, params);
  return rows[0]!.n;
}

describe('hookrelay.emit', () => {
  it('rolled back: no event, no delivery, no job, nothing sent', async () => {
    const r = await receivers.start();
    await webhookTo('emit-rollback', r.url);
    await app.query('begin');
    await app.query(`insert into orders values ('r-1', 10)`);
    const { rows } = await app.query<{ id: string }>(
      `select hookrelay.emit('emit-rollback', 'order.created', '{"order_id": "r-1"}') as id`,
    );
    await app.query('rollback');
    expect(await count('select 1 from events where id = $1', [rows[0]!.id])).toBe(0);
    expect(await count(`select 1 from deliveries where tenant_id = 'emit-rollback'`, [])).toBe(0);
    expect(
      await count(
        `select 1 from graphile_worker._private_jobs where payload->>'tenant_id' = 'emit-rollback'`,
        [],
      ),
    ).toBe(0);
    expect(r.requests).toHaveLength(0);
  });

  it('committed: delivered like any event, signed, with the payload as emitted', async () => {
    const r = await receivers.start();
    const webhookId = await webhookTo('emit-commit', r.url);
    await app.query('begin');
    await app.query(`insert into orders values ('c-1', 250)`);
    const { rows } = await app.query<{ id: string }>(
      `select hookrelay.emit('emit-commit', 'order.created', '{"order_id": "c-1", "amount": 250}',
                             idempotency_key => 'order-c-1-created') as id`,
    );
    await app.query('commit');
    const eventId = rows[0]!.id;
    await waitFor(() => (r.requests.length === 1 ? true : undefined), 15_000, 'the delivery');
    const body = JSON.parse(r.requests[0]!.body) as { type: string; data: unknown };
    expect(body).toMatchObject({ type: 'order.created', data: { order_id: 'c-1', amount: 250 } });
    const event = await svc.call('GET', `/events/${eventId}`, { token: await svc.token('emit-commit') });
    expect(event.body).toMatchObject({ id: eventId, idempotency_key: 'order-c-1-created' });
    expect(event.body.deliveries).toMatchObject([{ webhook_id: webhookId }]);
  });

  it('a thousand emits in one transaction deliver a thousand events', async () => {
    const r = await receivers.start();
    await webhookTo('emit-many', r.url);
    await app.query(`insert into tenants (id) values ('emit-many') on conflict do nothing`);
    await app.query(`update quotas set max_events_per_sec = 5000 where tenant_id = 'emit-many'`);
    await app.query('begin');
    await app.query(`
      select hookrelay.emit('emit-many', 'order.created', jsonb_build_object('n', n))
        from generate_series(1, 1000) n`);
    await app.query('commit');
    await waitFor(() => (r.requests.length >= 1000 ? true : undefined), 60_000, 'a thousand deliveries');
    const ns = r.requests.map((q) => (JSON.parse(q.body) as { data: { n: number } }).data.n);
    expect(new Set(ns).size).toBe(1000);
  });

  it('only a role granted hookrelay_emitter may call it, and that role may do nothing else', async () => {
    await app.query(`set role ${OTHER_ROLE}`);
    await expect(
      app.query(`select hookrelay.emit('emit-roles', 'order.created', '{}')`),
    ).rejects.toMatchObject({
      code: '42501',
    });
    await app.query('reset role');
    await app.query(`set role ${APP_ROLE}`);
    const { rows } = await app.query<{ id: string }>(
      `select hookrelay.emit('emit-roles', 'order.created', '{}') as id`,
    );
    expect(rows[0]!.id).toMatch(/^[0-9a-f-]{36}$/);
    for (const query of [
      'select * from events',
      'select * from webhooks',
      'select * from hookrelay.deliveries',
    ]) {
      await expect(app.query(query), query).rejects.toMatchObject({ code: '42501' });
    }
  });

  it('over max_events_per_sec it raises HR429, and a savepoint lets the transaction go on', async () => {
    await app.query(`insert into tenants (id) values ('emit-limited') on conflict do nothing`);
    await app.query(`insert into quotas (tenant_id, max_events_per_sec) values ('emit-limited', 2)
                     on conflict (tenant_id) do update set max_events_per_sec = 2`);
    await app.query('begin');
    await app.query(`select hookrelay.emit('emit-limited', 'order.created', '{"n": 1}')`);
    await app.query(`select hookrelay.emit('emit-limited', 'order.created', '{"n": 2}')`);
    await app.query('savepoint before_third');
    const refused = await app
      .query(`select hookrelay.emit('emit-limited', 'order.created', '{"n": 3}')`)
      .catch((err: unknown) => err as { code: string; message: string; hint?: string });
    expect(refused).toMatchObject({ code: 'HR429' });
    expect((refused as { message: string }).message).toContain('over its limit of 2 events per second');
    await app.query('rollback to savepoint before_third');
    await app.query(`insert into orders values ('l-1', 1)`);
    await app.query('commit');
    expect(await count(`select 1 from events where tenant_id = 'emit-limited'`, [])).toBe(2);
    expect(await count(`select 1 from orders where id = 'l-1'`, [])).toBe(1);
  });

  it('a tenant allowed no events gets HR403; bad input HR400; too large HR413', async () => {
    await app.query(`insert into tenants (id) values ('emit-off') on conflict do nothing`);
    await app.query(`insert into quotas (tenant_id, max_events_per_sec) values ('emit-off', 0)
                     on conflict (tenant_id) do update set max_events_per_sec = 0`);
    const cases: [string, string][] = [
      [`select hookrelay.emit('emit-off', 'order.created', '{}')`, 'HR403'],
      [`select hookrelay.emit('emit-bad', 'not a type!', '{}')`, 'HR400'],
      [`select hookrelay.emit('emit-bad', 'order.created', '[1, 2]')`, 'HR400'],
      [
        `select hookrelay.emit('emit-bad', 'order.created', (select jsonb_build_object('s', repeat('x', 300000))))`,
        'HR413',
      ],
      [
        `select hookrelay.emit('emit-bad', 'order.created',
                               (select ('{"a":' || repeat('[', 70) || repeat(']', 70) || '}')::jsonb))`,
        'HR400',
      ],
    ];
    for (const [query, code] of cases) {
      await expect(app.query(query), query.slice(0, 80)).rejects.toMatchObject({ code });
    }
    expect(await count(`select 1 from events where tenant_id in ('emit-off', 'emit-bad')`, [])).toBe(0);
  });

  it('the same idempotency key gives the same event id, within a transaction and across them', async () => {
    const emit = async () =>
      (
        await app.query<{ id: string }>(
          `select hookrelay.emit('emit-keyed', 'order.created', '{"n": 1}', idempotency_key => 'k-1') as id`,
        )
      ).rows[0]!.id;
    await app.query('begin');
    const first = await emit();
    expect(await emit()).toBe(first);
    await app.query('commit');
    expect(await emit()).toBe(first);
    expect(await count(`select 1 from events where tenant_id = 'emit-keyed'`, [])).toBe(1);
  });

  it('carries a traceparent into the delivery job', async () => {
    await webhookTo('emit-traced', 'http://127.0.0.1:9/never');
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    await app.query(`select hookrelay.emit('emit-traced', 'order.created', '{}', traceparent => $1)`, [
      traceparent,
    ]);
    const { rows } = await app.query<{ payload: { deliveries: { traceparent?: string }[] } }>(
      `select payload from graphile_worker._private_jobs where payload->>'tenant_id' = 'emit-traced'`,
    );
    expect(rows.map((row) => row.payload.deliveries[0]!.traceparent)).toEqual([traceparent]);
  });
});
