/**
 * Operational events: the service tells a tenant about its own webhooks through the tenant's
 * stream (types under hookrelay.), delivered to the webhooks that subscribe to them, once per
 * cause, never to another tenant, never in a loop.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/process.js';
import { receiverPool, type Receiver } from '../helpers/receiver.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
const receivers = receiverPool();

beforeAll(async () => {
  svc = await startTestService({ RETRY_SCHEDULE: '0.02,0.02' });
});
afterAll(async () => {
  await receivers.closeAll();
  await svc?.stop();
});

interface Received {
  type: string;
  data: Record<string, unknown>;
}
const bodies = (r: Receiver): Received[] => r.requests.map((q) => JSON.parse(q.body) as Received);
const ofType = (r: Receiver, type: string) => bodies(r).filter((b) => b.type === type);

async function operationalEvents(tenant: string, type: string): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    select count(*)::int as n from events where tenant_id = ${tenant} and type = ${type}`.execute(
    svc.service.database.db,
  );
  return rows[0]!.n;
}

describe('operational events', () => {
  it('a 410 disable, a re-enable, a rotation, a death and a full DLQ each reach the operations endpoint once', async () => {
    const tenant = 'ops-a';
    const token = await svc.token(tenant);
    const ops = await receivers.start();
    const gone = await receivers.start({ behaviour: { kind: 'status', status: 410 } });
    const failing = await receivers.start({ behaviour: { kind: 'status', status: 503 } });
    const catchAll = await receivers.start();
    const create = async (url: string, eventTypes: string[]) =>
      (await svc.call('POST', '/webhooks', { token, body: { url, event_types: eventTypes } })).body
        .id as string;
    await create(ops.url, ['hookrelay.*']);
    const goneId = await create(gone.url, ['order.*']);
    const failingId = await create(failing.url, ['invoice.*']);
    // `*` is every type of the tenant's own: it hears no operational event.
    await create(catchAll.url, ['*']);
    // Another tenant, subscribed to the same types, hears nothing of this one.
    const stranger = await receivers.start();
    await svc.call('POST', '/webhooks', {
      token: await svc.token('ops-b'),
      body: { url: stranger.url, event_types: ['hookrelay.*'] },
    });

    // 410 Gone: the webhook is disabled.
    await svc.call('POST', '/events', { token, body: { type: 'order.created', payload: {} } });
    await waitFor(
      () => (ofType(ops, 'hookrelay.webhook.disabled').length ? true : undefined),
      15_000,
      'disabled',
    );
    expect(ofType(ops, 'hookrelay.webhook.disabled')[0]!.data).toEqual({
      webhook_id: goneId,
      url: gone.url,
      reason: '410 Gone from endpoint',
      disabled_at: expect.any(String),
    });

    // Enabled again.
    gone.respond({ kind: 'status', status: 200 });
    await svc.call('PATCH', `/webhooks/${goneId}`, { token, body: { enabled: true } });
    await waitFor(
      () => (ofType(ops, 'hookrelay.webhook.enabled').length ? true : undefined),
      15_000,
      'enabled',
    );
    expect(ofType(ops, 'hookrelay.webhook.enabled')[0]!.data).toEqual({
      webhook_id: goneId,
      url: gone.url,
      resumed_deliveries: 1,
    });

    // A rotation.
    await svc.call('POST', `/webhooks/${goneId}/rotate-secret`, { token });
    await waitFor(
      () => (ofType(ops, 'hookrelay.webhook.secret_rotated').length ? true : undefined),
      15_000,
      'rotated',
    );
    expect(ofType(ops, 'hookrelay.webhook.secret_rotated')[0]!.data).toEqual({
      webhook_id: goneId,
      previous_secret_expires_at: expect.any(String),
    });

    // A death: three attempts (RETRY_SCHEDULE has two retries), then the DLQ.
    await svc.call('PUT', `/quotas/${tenant}`, {
      token: await svc.token('ops', { admin: true }),
      body: { max_dlq_size: 2 },
    });
    const first = await svc.call('POST', '/events', {
      token,
      body: { type: 'invoice.paid', payload: { n: 1 } },
    });
    await waitFor(() => (ofType(ops, 'hookrelay.delivery.dead').length ? true : undefined), 15_000, 'dead');
    expect(ofType(ops, 'hookrelay.delivery.dead')[0]!.data).toEqual({
      delivery_id: (first.body.delivery_ids as string[])[0],
      event_id: first.body.event_id,
      webhook_id: failingId,
      event_type: 'invoice.paid',
      last_error: 'HTTP 503: Service Unavailable',
      attempts: 3,
    });

    // A second death fills the DLQ (max 2): the webhook is disabled, and the tenant is told why.
    await svc.call('POST', '/events', { token, body: { type: 'invoice.paid', payload: { n: 2 } } });
    await waitFor(() => (ofType(ops, 'hookrelay.dlq.full').length ? true : undefined), 15_000, 'dlq full');
    expect(ofType(ops, 'hookrelay.dlq.full')[0]!.data).toMatchObject({
      webhook_id: failingId,
      max_dlq_size: 2,
    });
    await waitFor(
      () => (ofType(ops, 'hookrelay.webhook.disabled').length === 2 ? true : undefined),
      15_000,
      'disabled',
    );
    expect(ofType(ops, 'hookrelay.webhook.disabled')[1]!.data).toMatchObject({
      webhook_id: failingId,
      reason: 'dead-letter queue full',
    });

    // Once each, signed like any other delivery, and to nobody else.
    const counts = Object.fromEntries(
      [
        'hookrelay.webhook.disabled',
        'hookrelay.webhook.enabled',
        'hookrelay.webhook.secret_rotated',
        'hookrelay.delivery.dead',
        'hookrelay.dlq.full',
      ].map((type) => [type, ofType(ops, type).length]),
    );
    expect(counts).toEqual({
      'hookrelay.webhook.disabled': 2,
      'hookrelay.webhook.enabled': 1,
      'hookrelay.webhook.secret_rotated': 1,
      'hookrelay.delivery.dead': 2,
      'hookrelay.dlq.full': 1,
    });
    expect(ops.requests.every((q) => /^v1,/.test(String(q.headers['webhook-signature'])))).toBe(true);
    expect(stranger.requests).toEqual([]);
    expect(bodies(catchAll).filter((b) => b.type.startsWith('hookrelay.'))).toEqual([]);
    console.log(`operational events as received: ${JSON.stringify(bodies(ops))}`);
  });

  it('a dead operational endpoint is dead-lettered without announcing its own death', async () => {
    const tenant = 'ops-loop';
    const token = await svc.token(tenant);
    const deadOps = await receivers.start({ behaviour: { kind: 'status', status: 500 } });
    const failing = await receivers.start({ behaviour: { kind: 'status', status: 500 } });
    await svc.call('POST', '/webhooks', { token, body: { url: deadOps.url, event_types: ['hookrelay.*'] } });
    await svc.call('POST', '/webhooks', { token, body: { url: failing.url, event_types: ['a.*'] } });
    await svc.call('POST', '/events', { token, body: { type: 'a.b', payload: {} } });
    // The a.b delivery dies → one hookrelay.delivery.dead → its delivery to deadOps dies too.
    await waitFor(
      async () => {
        const { rows } = await sql<{ n: number }>`
          select count(*)::int as n from dlq where tenant_id = ${tenant}`.execute(svc.service.database.db);
        return rows[0]!.n === 2 ? true : undefined;
      },
      15_000,
      'both deliveries dead-lettered',
    );
    // Give a loop the time it would need to show itself, then count.
    await waitFor(() => (deadOps.requests.length >= 3 ? true : undefined), 5000, 'the operational attempts');
    expect(await operationalEvents(tenant, 'hookrelay.delivery.dead')).toBe(1);
    expect(deadOps.requests).toHaveLength(3);
  });
});
