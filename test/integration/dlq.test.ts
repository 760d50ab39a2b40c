/**
 * The dead-letter queue over HTTP: listing, retrying (one, and in bulk), deleting, resending any
 * finished delivery, the audit rows each writes, and a full DLQ. The real service with its
 * workers, real receivers on 127.0.0.1.
 */
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { enqueueDeliveries } from '../../src/delivery/enqueue.js';
import { deliveryRow, jobsOf, waitForDeliveryStatus } from '../helpers/fixtures.js';
import { seedDeadLetters, setQuota } from '../helpers/dead-letters.js';
import { waitFor } from '../helpers/process.js';
import { receiverPool } from '../helpers/receiver.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
let alice: string;
let bob: string;
let admin: string;
const receivers = receiverPool();
const receiver = receivers.start;
const db = () => svc.service.database.db;

beforeAll(async () => {
  svc = await startTestService({ RETRY_SCHEDULE: '0.05,0.05', NUM_WORKERS: '4' });
  alice = await svc.token('alice');
  bob = await svc.token('bob');
  admin = await svc.token('ops', { admin: true });
});
afterEach(async () => {
  await receivers.closeAll();
});
afterAll(async () => {
  await svc?.stop();
});

async function createWebhook(token: string, url: string): Promise<string> {
  const res = await svc.call('POST', '/webhooks', { token, body: { url, event_types: ['*'] } });
  expect(res.status).toBe(201);
  return res.body.id;
}

async function sendEvent(token: string, payload: Record<string, unknown> = {}): Promise<string> {
  const res = await svc.call('POST', '/events', { token, body: { type: 'order.created', payload } });
  expect(res.status).toBe(202);
  return res.body.delivery_ids[0];
}

async function metricValue(name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${svc.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

describe('a dead delivery, retried', () => {
  it('shows in GET /dlq with the contract fields; a retry delivers it with the same webhook-id and empties the entry; the audit log names who did it', async () => {
    const r = await receiver({ behaviour: { kind: 'status', status: 503, body: 'down' } });
    const webhookId = await createWebhook(alice, r.url);
    const deliveryId = await sendEvent(alice, { order: 1 });
    await waitForDeliveryStatus(db(), deliveryId, ['dead']);
    expect(r.requests).toHaveLength(3);

    const list = await svc.call('GET', '/dlq', { token: alice });
    expect(list.status).toBe(200);
    expect(list.body).toMatchObject({ total: 1, limit: 50, offset: 0 });
    const [entry] = list.body.entries;
    expect(Object.keys(entry).sort()).toEqual(
      ['attempts', 'created_at', 'delivery_id', 'event_id', 'last_error', 'tenant_id', 'webhook_id'].sort(),
    );
    expect(entry).toMatchObject({
      delivery_id: deliveryId,
      webhook_id: webhookId,
      tenant_id: 'alice',
      last_error: 'HTTP 503: Service Unavailable',
      attempts: 3,
    });
    expect(new Date(entry.created_at).toISOString()).toBe(entry.created_at);

    r.respond({ kind: 'status', status: 200, body: 'ok' });
    const retried = await svc.call('POST', `/dlq/${deliveryId}/retry`, {
      token: alice,
      headers: { 'x-request-id': 'retry-req-1' },
    });
    expect(retried.status).toBe(202);
    expect(retried.body).toEqual({ delivery_id: deliveryId, status: 'pending', previous_status: 'dead' });
    // The entry left the DLQ in the same transaction that queued the new series.
    expect((await svc.call('GET', '/dlq', { token: alice })).body.total).toBe(0);

    await waitForDeliveryStatus(db(), deliveryId, ['succeeded']);
    expect(r.requests).toHaveLength(4);
    expect(new Set(r.requests.map((q) => q.headers['webhook-id']))).toEqual(new Set([deliveryId]));
    const detail = await svc.call('GET', `/deliveries/${deliveryId}`, { token: alice });
    expect(detail.body.attempts.map((a: any) => [a.attempt_number, a.status_code])).toEqual([
      [1, 503],
      [2, 503],
      [3, 503],
      [1, 200],
    ]);

    const audit = await svc.call('GET', '/audit-log?action=dlq.retried', { token: alice });
    expect(audit.body.total).toBe(1);
    expect(audit.body.entries[0]).toMatchObject({
      actor: 'alice:tenant',
      action: 'dlq.retried',
      object_type: 'delivery',
      object_id: deliveryId,
      tenant_id: 'alice',
      request_id: 'retry-req-1',
      details: { webhook_id: webhookId },
    });
    expect(await metricValue('webhook_dlq_retries_total', 'kind="single"')).toBe(1);
  });

  it('a second retry of the same entry, even at the same moment, is a 404 and sends nothing twice', async () => {
    const r = await receiver();
    const webhookId = await createWebhook(alice, r.url);
    const { deliveryIds } = await seedDeadLetters(db(), { tenantId: 'alice', webhookId, count: 1 });
    const id = deliveryIds[0]!;
    const answers = await Promise.all(
      [1, 2, 3].map(() => svc.call('POST', `/dlq/${id}/retry`, { token: alice })),
    );
    expect(answers.map((a) => a.status).sort()).toEqual([202, 404, 404]);
    await waitForDeliveryStatus(db(), id, ['succeeded']);
    await waitFor(async () => ((await jobsOf(db(), id)).length === 0 ? true : undefined));
    expect(r.requests.filter((q) => q.headers['webhook-id'] === id)).toHaveLength(1);
  });

  it('a retry while the webhook is disabled is a 409 and the entry stays', async () => {
    const webhookId = await createWebhook(alice, 'http://127.0.0.1:9/off');
    const { deliveryIds } = await seedDeadLetters(db(), { tenantId: 'alice', webhookId, count: 1 });
    await svc.call('PATCH', `/webhooks/${webhookId}`, { token: alice, body: { enabled: false } });
    const res = await svc.call('POST', `/dlq/${deliveryIds[0]}/retry`, { token: alice });
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('conflict');
    expect((await svc.call('GET', `/dlq?webhook_id=${webhookId}`, { token: alice })).body.total).toBe(1);
    expect((await deliveryRow(db(), deliveryIds[0]!))!.status).toBe('dead');
    await svc.call('DELETE', `/webhooks/${webhookId}`, { token: alice });
  });
});

describe('GET /dlq', () => {
  let webhookA: string;
  let webhookB: string;
  let older: string[];
  let newer: string[];

  beforeAll(async () => {
    // A tenant of its own, so the other tests' entries do not change the counts.
    const carol = await svc.token('carol');
    webhookA = await createWebhook(carol, 'http://127.0.0.1:9/a');
    webhookB = await createWebhook(carol, 'http://127.0.0.1:9/b');
    older = (
      await seedDeadLetters(db(), {
        tenantId: 'carol',
        webhookId: webhookA,
        count: 40,
        deadAt: new Date('2026-01-01T00:00:00Z'),
      })
    ).deliveryIds;
    newer = (
      await seedDeadLetters(db(), {
        tenantId: 'carol',
        webhookId: webhookB,
        count: 30,
        deadAt: new Date('2026-02-01T00:00:00Z'),
      })
    ).deliveryIds;
  });

  it('pages newest first with an exact total; limit defaults to 50 and may be 1–500', async () => {
    const carol = await svc.token('carol');
    const first = await svc.call('GET', '/dlq', { token: carol });
    expect(first.body).toMatchObject({ total: 70, limit: 50, offset: 0 });
    expect(first.body.entries).toHaveLength(50);
    const dates = first.body.entries.map((e: any) => e.created_at);
    expect(dates).toEqual([...dates].sort().reverse());
    expect(
      first.body.entries
        .slice(0, 30)
        .map((e: any) => e.delivery_id)
        .sort(),
    ).toEqual([...newer].sort());
    const rest = await svc.call('GET', '/dlq?limit=50&offset=50', { token: carol });
    expect(rest.body.entries).toHaveLength(20);
    const all = [...first.body.entries, ...rest.body.entries].map((e: any) => e.delivery_id);
    expect(new Set(all).size).toBe(70);
    expect((await svc.call('GET', '/dlq?limit=500', { token: carol })).body.entries).toHaveLength(70);
    for (const bad of [
      'limit=501',
      'limit=0',
      'offset=-1',
      'webhook_id=nope',
      'since=yesterday',
      'colour=red',
    ]) {
      const res = await svc.call('GET', `/dlq?${bad}`, { token: carol });
      expect(res.status, bad).toBe(400);
      expect(res.body.error.code).toBe('invalid_request');
    }
  });

  it('filters by webhook_id, since and until', async () => {
    const carol = await svc.token('carol');
    const byWebhook = await svc.call('GET', `/dlq?webhook_id=${webhookA}&limit=500`, { token: carol });
    expect(byWebhook.body.total).toBe(40);
    expect(byWebhook.body.entries.map((e: any) => e.delivery_id).sort()).toEqual([...older].sort());
    expect((await svc.call('GET', '/dlq?since=2026-01-15T00:00:00Z', { token: carol })).body.total).toBe(30);
    expect((await svc.call('GET', '/dlq?until=2026-01-15T00:00:00Z', { token: carol })).body.total).toBe(40);
    expect(
      (await svc.call('GET', `/dlq?since=2026-01-15T00:00:00Z&webhook_id=${webhookA}`, { token: carol })).body
        .total,
    ).toBe(0);
  });

  it('an admin sees every tenant, or the one it names', async () => {
    const all = await svc.call('GET', '/dlq?limit=500', { token: admin });
    const tenants = new Set(all.body.entries.map((e: any) => e.tenant_id));
    expect(tenants.has('carol')).toBe(true);
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from dlq`.execute(db());
    expect(all.body.total).toBe(rows[0]!.n);
    const carolOnly = await svc.call('GET', '/dlq?tenant_id=carol', { token: admin });
    expect(carolOnly.body.total).toBe(70);
  });
});

describe('tenant B and tenant A’s dead letters', () => {
  it('B can neither see, retry, bulk-retry nor delete them', async () => {
    const webhookId = await createWebhook(alice, 'http://127.0.0.1:9/alice-private');
    const { deliveryIds } = await seedDeadLetters(db(), { tenantId: 'alice', webhookId, count: 2 });
    const [one, two] = deliveryIds as [string, string];
    await svc.call('GET', '/webhooks', { token: bob }); // bob exists

    const bobList = await svc.call('GET', '/dlq?limit=500', { token: bob });
    expect(bobList.status).toBe(200);
    expect(JSON.stringify(bobList.body)).not.toContain(one);
    expect(bobList.body.entries.every((e: any) => e.tenant_id === 'bob')).toBe(true);
    expect((await svc.call('GET', `/dlq?webhook_id=${webhookId}`, { token: bob })).body.total).toBe(0);
    expect((await svc.call('GET', '/dlq?tenant_id=alice', { token: bob })).status).toBe(403);

    expect((await svc.call('POST', `/dlq/${one}/retry`, { token: bob })).status).toBe(404);
    expect(
      (await svc.call('POST', `/dlq/${one}/retry`, { token: bob, body: { tenant_id: 'alice' } })).status,
    ).toBe(403);
    expect((await svc.call('DELETE', `/dlq/${two}`, { token: bob })).status).toBe(404);
    expect((await svc.call('DELETE', `/dlq/${two}?tenant_id=alice`, { token: bob })).status).toBe(403);
    expect((await svc.call('POST', `/deliveries/${one}/retry`, { token: bob })).status).toBe(404);
    const bulk = await svc.call('POST', '/dlq/retry', { token: bob, body: { webhook_id: webhookId } });
    expect(bulk.status).toBe(200);
    expect(bulk.body.requeued).toBe(0);
    expect((await svc.call('POST', '/dlq/retry', { token: bob, body: { tenant_id: 'alice' } })).status).toBe(
      403,
    );

    // Both entries are still Alice's, untouched.
    const aliceList = await svc.call('GET', `/dlq?webhook_id=${webhookId}`, { token: alice });
    expect(aliceList.body.entries.map((e: any) => e.delivery_id).sort()).toEqual([one, two].sort());
    for (const id of deliveryIds) expect((await deliveryRow(db(), id))!.status).toBe('dead');
    const bobAudit = await svc.call('GET', '/audit-log?limit=500', { token: bob });
    expect(JSON.stringify(bobAudit.body)).not.toContain(webhookId);
    await svc.call('DELETE', `/webhooks/${webhookId}`, { token: alice });
  });
});

describe('DELETE /dlq/:id', () => {
  it('removes the entry (204), keeps the delivery and its attempts as dead, and is audited', async () => {
    const webhookId = await createWebhook(alice, 'http://127.0.0.1:9/deleted');
    const { deliveryIds } = await seedDeadLetters(db(), { tenantId: 'alice', webhookId, count: 1 });
    const id = deliveryIds[0]!;
    const res = await svc.call('DELETE', `/dlq/${id}`, {
      token: alice,
      headers: { 'x-request-id': 'del-1' },
    });
    expect(res.status).toBe(204);
    expect(res.body).toBeUndefined();
    expect((await svc.call('GET', `/dlq?webhook_id=${webhookId}`, { token: alice })).body.total).toBe(0);
    expect((await deliveryRow(db(), id))!.status).toBe('dead');
    expect((await svc.call('DELETE', `/dlq/${id}`, { token: alice })).status).toBe(404);
    expect((await svc.call('DELETE', '/dlq/not-a-uuid', { token: alice })).status).toBe(404);
    const audit = await svc.call('GET', `/audit-log?action=dlq.deleted&object_id=${id}`, { token: alice });
    expect(audit.body.entries).toEqual([
      expect.objectContaining({ actor: 'alice:tenant', object_type: 'delivery', request_id: 'del-1' }),
    ]);
    await svc.call('DELETE', `/webhooks/${webhookId}`, { token: alice });
  });
});

describe('POST /dlq/retry (bulk)', () => {
  it('requeues what matches, in batches, audited per batch; entries of disabled webhooks stay', async () => {
    const dave = await svc.token('dave');
    const r = await receiver();
    const live = await createWebhook(dave, r.url);
    const off = await createWebhook(dave, 'http://127.0.0.1:9/off');
    await setQuota(db(), 'dave', { max_dlq_size: 10_000 });
    const old = await seedDeadLetters(db(), {
      tenantId: 'dave',
      webhookId: live,
      count: 5,
      deadAt: new Date('2026-01-01T00:00:00Z'),
    });
    const recent = await seedDeadLetters(db(), { tenantId: 'dave', webhookId: live, count: 1200 });
    const parked = await seedDeadLetters(db(), { tenantId: 'dave', webhookId: off, count: 3 });
    await svc.call('PATCH', `/webhooks/${off}`, { token: dave, body: { enabled: false } });

    const res = await svc.call('POST', '/dlq/retry', {
      token: dave,
      body: { since: '2026-01-15T00:00:00Z' },
      headers: { 'x-request-id': 'bulk-1' },
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ requeued: 1200, skipped_webhook_disabled: 3 });

    const left = await svc.call('GET', '/dlq?limit=500', { token: dave });
    expect(left.body.entries.map((e: any) => e.delivery_id).sort()).toEqual(
      [...old.deliveryIds, ...parked.deliveryIds].sort(),
    );
    await waitFor(() => (r.requests.length >= 1200 ? true : undefined), 60_000, '1200 deliveries');
    const ids = r.requests.map((q) => q.headers['webhook-id']);
    expect(ids).toHaveLength(1200);
    expect(new Set(ids)).toEqual(new Set(recent.deliveryIds));

    const audit = await svc.call('GET', '/audit-log?action=dlq.bulk_retried', { token: dave });
    expect(audit.body.entries.map((e: any) => e.details.count).sort()).toEqual([200, 500, 500]);
    for (const entry of audit.body.entries) {
      expect(entry).toMatchObject({
        actor: 'dave:tenant',
        object_type: 'dlq',
        tenant_id: 'dave',
        request_id: 'bulk-1',
        details: { filters: { since: '2026-01-15T00:00:00Z', until: null, webhook_id: null } },
      });
    }
    expect(await metricValue('webhook_dlq_retries_total', 'kind="bulk"')).toBe(1200);
    for (const bad of [{ since: 'soon' }, { webhook_id: 5 }, { everything: true }]) {
      expect((await svc.call('POST', '/dlq/retry', { token: dave, body: bad })).status).toBe(400);
    }
  });
});

describe('POST /deliveries/:id/retry', () => {
  it('resends a succeeded delivery with the same webhook-id, audited', async () => {
    const hank = await svc.token('hank');
    const r = await receiver();
    await createWebhook(hank, r.url);
    const id = await sendEvent(hank, { resend: 1 });
    await waitForDeliveryStatus(db(), id, ['succeeded']);
    const res = await svc.call('POST', `/deliveries/${id}/retry`, {
      token: hank,
      headers: { 'x-request-id': 'resend-1' },
    });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ delivery_id: id, status: 'pending', previous_status: 'succeeded' });
    await waitFor(() => (r.requests.length === 2 ? true : undefined));
    await waitForDeliveryStatus(db(), id, ['succeeded']);
    expect(r.requests.map((q) => q.headers['webhook-id'])).toEqual([id, id]);
    expect(JSON.parse(r.requests[1]!.body)).toEqual(JSON.parse(r.requests[0]!.body));
    const audit = await svc.call('GET', `/audit-log?action=delivery.resent&object_id=${id}`, { token: hank });
    expect(audit.body.entries[0]).toMatchObject({
      actor: 'hank:tenant',
      request_id: 'resend-1',
      details: { previous_status: 'succeeded', previous_attempts: 1 },
    });
  });

  it('refuses a queued delivery (409), and a delivery of a disabled webhook (409)', async () => {
    const webhookId = await createWebhook(alice, 'http://127.0.0.1:9/queued');
    const { rows } = await sql<{ id: string }>`
      with e as (insert into events (id, tenant_id, type, payload) values (gen_random_uuid(), 'alice', 't', '{}') returning id)
      insert into deliveries (id, event_id, webhook_id, tenant_id) select gen_random_uuid(), e.id, ${webhookId}, 'alice' from e
      returning id
    `.execute(db());
    const queued = rows[0]!.id;
    const res = await svc.call('POST', `/deliveries/${queued}/retry`, { token: alice });
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('conflict');
    // In flight: claimed (attempt 1 taken) and not finished.
    await sql`update deliveries set attempt_count = 1 where id = ${queued}`.execute(db());
    expect((await svc.call('POST', `/deliveries/${queued}/retry`, { token: alice })).status).toBe(409);

    const { deliveryIds } = await seedDeadLetters(db(), { tenantId: 'alice', webhookId, count: 1 });
    await svc.call('PATCH', `/webhooks/${webhookId}`, { token: alice, body: { enabled: false } });
    expect((await svc.call('POST', `/deliveries/${deliveryIds[0]}/retry`, { token: alice })).status).toBe(
      409,
    );
    expect((await deliveryRow(db(), deliveryIds[0]!))!.status).toBe('dead');
    await svc.call('DELETE', `/webhooks/${webhookId}`, { token: alice });
  });

  it('a failed delivery starts over now: its scheduled retry sends nothing more', async () => {
    const r = await receiver();
    const ivan = await svc.token('ivan');
    const webhookId = await createWebhook(ivan, r.url);
    // Attempt 1 failed; attempt 2 is due in an hour — the state the engine leaves behind.
    const { rows } = await sql<{ id: string }>`
      with e as (insert into events (id, tenant_id, type, payload) values (gen_random_uuid(), 'ivan', 't', '{}') returning id)
      insert into deliveries (id, event_id, webhook_id, tenant_id, status, attempt_count, next_attempt_at, last_error, last_status_code)
      select gen_random_uuid(), e.id, ${webhookId}, 'ivan', 'failed', 1, now() + interval '1 hour', 'HTTP 500: Internal Server Error', 500
        from e
      returning id
    `.execute(db());
    const id = rows[0]!.id;
    await enqueueDeliveries(db(), [{ deliveryId: id, attempt: 2, runAt: new Date(Date.now() + 3_600_000) }]);

    const res = await svc.call('POST', `/deliveries/${id}/retry`, { token: ivan });
    expect(res.status).toBe(202);
    expect(res.body.previous_status).toBe('failed');
    await waitForDeliveryStatus(db(), id, ['succeeded']);
    // The old series' hour-away job is still queued; brought forward, it finds its attempt no
    // longer due and sends nothing.
    const stale = (await jobsOf(db(), id)).filter((job) => job.payload.attempt === 2);
    expect(stale).toHaveLength(1);
    await sql`update graphile_worker._private_jobs set run_at = now() where id = ${stale[0]!.id}`.execute(
      db(),
    );
    await waitFor(async () => ((await jobsOf(db(), id)).length === 0 ? true : undefined));
    expect(r.requests.map((q) => q.headers['webhook-id'])).toEqual([id]);
    const detail = await svc.call('GET', `/deliveries/${id}`, { token: ivan });
    expect(detail.body).toMatchObject({ status: 'succeeded', attempt_count: 1, last_error: null });
  });

  it('a dead delivery resent also leaves the DLQ', async () => {
    const r = await receiver();
    const webhookId = await createWebhook(alice, r.url);
    const { deliveryIds } = await seedDeadLetters(db(), { tenantId: 'alice', webhookId, count: 1 });
    const id = deliveryIds[0]!;
    const res = await svc.call('POST', `/deliveries/${id}/retry`, { token: alice });
    expect(res.status).toBe(202);
    expect(res.body.previous_status).toBe('dead');
    expect((await svc.call('GET', `/dlq?webhook_id=${webhookId}`, { token: alice })).body.total).toBe(0);
    await waitForDeliveryStatus(db(), id, ['succeeded']);
    expect(r.requests.map((q) => q.headers['webhook-id'])).toEqual([id]);
  });
});

describe('a full DLQ (max_dlq_size)', () => {
  it('still records every dead delivery, pauses the failing webhook, and says so: webhook, audit, quotas, metric', async () => {
    const frank = await svc.token('frank');
    const r = await receiver({ behaviour: { kind: 'status', status: 500 } });
    const webhookId = await createWebhook(frank, r.url);
    const healthy = await receiver();
    const healthyWebhook = await svc.call('POST', '/webhooks', {
      token: frank,
      body: { url: healthy.url, event_types: ['healthy.*'] },
    });
    await setQuota(db(), 'frank', { max_dlq_size: 2 });
    const before = await metricValue('webhook_dlq_full_total');

    const first = await sendEvent(frank);
    await waitForDeliveryStatus(db(), first, ['dead']);
    expect((await svc.call('GET', `/webhooks/${webhookId}`, { token: frank })).body.enabled).toBe(true);
    const second = await sendEvent(frank);
    await waitForDeliveryStatus(db(), second, ['dead']);

    const webhook = (await svc.call('GET', `/webhooks/${webhookId}`, { token: frank })).body;
    expect(webhook).toMatchObject({ enabled: false, disabled_reason: 'dead-letter queue full' });
    const quota = await svc.call('GET', '/quotas/frank', { token: frank });
    expect(quota.body.current_usage.dlq_count).toBe(2);
    expect(quota.body.dlq_full).toBe(true);
    const audit = await svc.call('GET', `/audit-log?action=webhook.disabled&object_id=${webhookId}`, {
      token: frank,
    });
    expect(audit.body.entries).toEqual([
      expect.objectContaining({
        actor: 'system',
        tenant_id: 'frank',
        details: { reason: 'dead-letter queue full', delivery_id: second, max_dlq_size: 2 },
      }),
    ]);
    expect(await metricValue('webhook_dlq_full_total')).toBe(before + 1);
    // Other webhooks of the tenant keep delivering.
    const ok = await svc.call('POST', '/events', {
      token: frank,
      body: { type: 'healthy.ping', payload: {} },
    });
    await waitForDeliveryStatus(db(), ok.body.delivery_ids[0], ['succeeded']);
    expect(healthyWebhook.body.enabled).toBe(true);

    // Re-enabled with the DLQ still full: two more failures at once. Each is either recorded in
    // the DLQ (one may slip in beside the one that pauses the webhook) or waits as paused.
    await svc.call('PATCH', `/webhooks/${webhookId}`, { token: frank, body: { enabled: true } });
    // Both accepted before either can die (a disabled webhook gets no new deliveries).
    const more = await Promise.all([sendEvent(frank), sendEvent(frank)]);
    const ends = await Promise.all(more.map((id) => waitForDeliveryStatus(db(), id, ['dead', 'paused'])));
    expect(ends.some((row) => row.status === 'dead')).toBe(true);
    const { rows } = await sql<{ status: string; n: number; in_dlq: number }>`
      select d.status, count(*)::int as n, count(q.delivery_id)::int as in_dlq
        from deliveries d left join dlq q on q.delivery_id = d.id
       where d.webhook_id = ${webhookId} group by d.status
    `.execute(db());
    const byStatus = Object.fromEntries(rows.map((row) => [row.status, row]));
    expect(byStatus.dead!.n + (byStatus.paused?.n ?? 0)).toBe(4);
    expect(byStatus.dead!.in_dlq).toBe(byStatus.dead!.n);
    expect((await svc.call('GET', `/webhooks/${webhookId}`, { token: frank })).body.disabled_reason).toBe(
      'dead-letter queue full',
    );
    expect(await metricValue('webhook_dlq_full_total')).toBeGreaterThanOrEqual(before + 2);
  });
});

describe('GET /audit-log', () => {
  it('lists the tenant’s own rows newest first in the list shape; an admin sees all or one tenant', async () => {
    const gina = await svc.token('gina');
    const id = await createWebhook(gina, 'http://127.0.0.1:9/gina');
    await svc.call('PATCH', `/webhooks/${id}`, { token: gina, body: { description: 'changed' } });
    await svc.call('POST', `/webhooks/${id}/rotate-secret`, { token: gina });
    await svc.call('DELETE', `/webhooks/${id}`, { token: gina });

    const res = await svc.call('GET', '/audit-log', { token: gina });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ total: 4, limit: 50, offset: 0 });
    expect(res.body.entries.map((e: any) => e.action)).toEqual([
      'webhook.deleted',
      'webhook.secret_rotated',
      'webhook.updated',
      'webhook.created',
    ]);
    for (const entry of res.body.entries) {
      expect(Object.keys(entry).sort()).toEqual(
        [
          'action',
          'actor',
          'at',
          'details',
          'id',
          'object_id',
          'object_type',
          'request_id',
          'tenant_id',
        ].sort(),
      );
      expect(entry).toMatchObject({ actor: 'gina:tenant', tenant_id: 'gina', object_id: id });
      expect(entry.request_id).toEqual(expect.any(String));
    }
    expect(JSON.stringify(res.body)).not.toContain('whsec_');
    const page = await svc.call('GET', '/audit-log?limit=1&offset=1&action=webhook.secret_rotated', {
      token: gina,
    });
    expect(page.body).toMatchObject({ total: 1, limit: 1, offset: 1, entries: [] });

    expect((await svc.call('GET', '/audit-log?limit=501', { token: gina })).status).toBe(400);
    expect((await svc.call('GET', '/audit-log?actor=x', { token: gina })).status).toBe(400);
    expect((await svc.call('GET', '/audit-log?tenant_id=alice', { token: gina })).status).toBe(403);
    const forGina = await svc.call('GET', '/audit-log?tenant_id=gina', { token: admin });
    expect(forGina.body.total).toBe(4);
    const everyone = await svc.call('GET', '/audit-log?limit=500', { token: admin });
    expect(new Set(everyone.body.entries.map((e: any) => e.tenant_id)).size).toBeGreaterThan(2);
  });
});
