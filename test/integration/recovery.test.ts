/**
 * POST /webhooks/:id/recover: the endpoint was down, now it is back — every failed or dead
 * delivery of the webhook created since a time is sent again, once.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { enqueueDeliveries } from '../../src/delivery/enqueue.js';
import { seedDeadLetters } from '../helpers/dead-letters.js';
import { jobsOf } from '../helpers/fixtures.js';
import { waitFor } from '../helpers/process.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
let r: Receiver;
const db = () => svc.service.database.db;

beforeAll(async () => {
  svc = await startTestService({ NUM_WORKERS: '4' });
  r = await startReceiver();
});
afterAll(async () => {
  await r?.close();
  await svc?.stop();
});

/** `count` deliveries of the webhook in `status`, created at `createdAt`; failed ones with their retry job an hour away. */
async function seedDeliveries(
  tenantId: string,
  webhookId: string,
  status: 'failed' | 'succeeded',
  count: number,
  createdAt: Date,
): Promise<string[]> {
  const { rows } = await sql<{ id: string }>`
    with e as (
      insert into events (id, tenant_id, type, payload, created_at)
      select gen_random_uuid(), ${tenantId}, 'order.created', '{}', ${createdAt} from generate_series(1, ${count})
      returning id
    )
    insert into deliveries (id, event_id, webhook_id, tenant_id, status, attempt_count, next_attempt_at,
                            last_error, created_at, updated_at, succeeded_at)
    select gen_random_uuid(), e.id, ${webhookId}, ${tenantId}, ${status}, 2,
           case when ${status} = 'failed' then now() + interval '1 hour' end,
           case when ${status} = 'failed' then 'HTTP 502: Bad Gateway' end,
           ${createdAt}, ${createdAt},
           case when ${status} = 'succeeded' then ${createdAt}::timestamptz end
      from e
    returning id
  `.execute(db());
  const ids = rows.map((row) => row.id);
  if (status === 'failed') {
    await enqueueDeliveries(
      db(),
      ids.map((deliveryId) => ({ deliveryId, attempt: 3, runAt: new Date(Date.now() + 3_600_000) })),
    );
  }
  return ids;
}

it('sends every failed and dead delivery since the time again, once each; older ones and succeeded ones stay', async () => {
  const token = await svc.token('acme');
  const webhook = await svc.call('POST', '/webhooks', { token, body: { url: r.url, event_types: ['*'] } });
  const webhookId: string = webhook.body.id;
  const outageStart = new Date(Date.now() - 3_600_000);
  const before = new Date(outageStart.getTime() - 3_600_000);
  const during = new Date(outageStart.getTime() + 600_000);

  const oldDead = await seedDeadLetters(db(), { tenantId: 'acme', webhookId, count: 3, createdAt: before });
  const dead = await seedDeadLetters(db(), { tenantId: 'acme', webhookId, count: 700, createdAt: during });
  const failed = await seedDeliveries('acme', webhookId, 'failed', 20, during);
  const succeeded = await seedDeliveries('acme', webhookId, 'succeeded', 5, during);

  const res = await svc.call('POST', `/webhooks/${webhookId}/recover`, {
    token,
    body: { since: outageStart.toISOString() },
    headers: { 'x-request-id': 'recover-1' },
  });
  expect(res.status).toBe(200);
  expect(res.body).toEqual({ requeued: 720 });

  const expected = new Set([...dead.deliveryIds, ...failed]);
  await waitFor(
    () => (r.requests.length >= expected.size ? true : undefined),
    60_000,
    'recovered deliveries',
  );
  const { rows } = await sql<{ status: string; n: number }>`
    select status, count(*)::int as n from deliveries where webhook_id = ${webhookId} group by status order by status
  `.execute(db());
  await waitFor(async () => {
    const { rows: now } = await sql<{ n: number }>`
      select count(*)::int as n from deliveries where webhook_id = ${webhookId} and status = 'succeeded'`.execute(
      db(),
    );
    return now[0]!.n === 725 ? true : undefined;
  });
  const ids = r.requests.map((q) => q.headers['webhook-id'] as string);
  expect(ids).toHaveLength(720);
  expect(new Set(ids)).toEqual(expected);
  expect(rows.find((row) => row.status === 'dead')?.n).toBe(3);

  // The recovered dead letters left the DLQ; the old ones are still there.
  const dlq = await svc.call('GET', `/dlq?webhook_id=${webhookId}`, { token });
  expect(dlq.body.entries.map((e: any) => e.delivery_id).sort()).toEqual([...oldDead.deliveryIds].sort());
  // The failed ones' hour-away retries of the old series, brought forward, send nothing more.
  await sql`update graphile_worker._private_jobs set run_at = now()`.execute(db());
  await waitFor(async () => {
    for (const id of failed) if ((await jobsOf(db(), id)).length > 0) return undefined;
    return true;
  });
  expect(r.requests).toHaveLength(720);
  expect(await sql`select * from delivery_leases`.execute(db()).then((q) => q.rows)).toEqual([]);
  expect(succeeded).toHaveLength(5);

  const audit = await svc.call('GET', `/audit-log?action=webhook.recovered&object_id=${webhookId}`, {
    token,
  });
  expect(audit.body.entries.map((e: any) => e.details.count).sort()).toEqual([220, 500]);
  expect(audit.body.entries[0]).toMatchObject({
    actor: 'acme:tenant',
    object_type: 'webhook',
    request_id: 'recover-1',
    details: { since: outageStart.toISOString(), until: null },
  });
  const metrics = await (await fetch(`${svc.url}/metrics`)).text();
  expect(metrics).toContain('webhook_dlq_retries_total{kind="recover"} 720');

  // Nothing is left to recover: a second call requeues nothing (the first series succeeded).
  const again = await svc.call('POST', `/webhooks/${webhookId}/recover`, {
    token,
    body: { since: outageStart.toISOString() },
  });
  expect(again.body).toEqual({ requeued: 0 });
});

it('until bounds the window; a disabled webhook is a 409; input and tenants are checked', async () => {
  const token = await svc.token('bolt');
  const other = await svc.token('intruder');
  const webhook = await svc.call('POST', '/webhooks', { token, body: { url: r.url, event_types: ['*'] } });
  const webhookId: string = webhook.body.id;
  const a = await seedDeadLetters(db(), {
    tenantId: 'bolt',
    webhookId,
    count: 2,
    createdAt: new Date('2026-03-01T00:00:00Z'),
  });
  await seedDeadLetters(db(), {
    tenantId: 'bolt',
    webhookId,
    count: 2,
    createdAt: new Date('2026-03-05T00:00:00Z'),
  });

  for (const body of [{}, { since: 'yesterday' }, { since: '2026-03-01T00:00:00Z', extra: 1 }]) {
    const bad = await svc.call('POST', `/webhooks/${webhookId}/recover`, { token, body });
    expect(bad.status, JSON.stringify(body)).toBe(400);
  }
  const since = '2026-02-28T00:00:00Z';
  expect(
    (await svc.call('POST', `/webhooks/${webhookId}/recover`, { token: other, body: { since } })).status,
  ).toBe(404);
  expect(
    (
      await svc.call('POST', `/webhooks/${webhookId}/recover`, {
        token: other,
        body: { since, tenant_id: 'bolt' },
      })
    ).status,
  ).toBe(403);

  await svc.call('PATCH', `/webhooks/${webhookId}`, { token, body: { enabled: false } });
  const refused = await svc.call('POST', `/webhooks/${webhookId}/recover`, { token, body: { since } });
  expect(refused.status).toBe(409);
  await svc.call('PATCH', `/webhooks/${webhookId}`, { token, body: { enabled: true } });

  const res = await svc.call('POST', `/webhooks/${webhookId}/recover`, {
    token,
    body: { since, until: '2026-03-02T00:00:00Z' },
  });
  expect(res.body).toEqual({ requeued: 2 });
  await waitFor(() => {
    const got = new Set(r.requests.map((q) => q.headers['webhook-id']));
    return a.deliveryIds.every((id) => got.has(id)) ? true : undefined;
  });
  expect((await svc.call('GET', `/dlq?webhook_id=${webhookId}`, { token })).body.total).toBe(2);
});
