import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import type { AppDeps } from '../../src/api/features.js';
import { registeredRoutes } from '../helpers/routes.js';
import { startTestService, testSecretBox, type TestService } from '../helpers/service.js';
import { openSecrets } from '../../src/webhooks/webhook-secrets.js';

let svc: TestService;
let alice: string; // tenant A's token
let bob: string; // tenant B's token
let admin: string;
const b = {
  webhookId: '',
  secret: '',
  url: 'http://127.0.0.1:9/bob-secret-path',
  eventId: '',
  deliveryId: '',
};

beforeAll(async () => {
  svc = await startTestService({ NUM_WORKERS: '0' });
  alice = await svc.token('tenant-a');
  bob = await svc.token('tenant-b');
  admin = await svc.token('root', { admin: true });
  const webhook = await svc.call('POST', '/webhooks', {
    token: bob,
    body: { url: b.url, event_types: ['*'] },
  });
  b.webhookId = webhook.body.id;
  b.secret = webhook.body.secret;
  const event = await svc.call('POST', '/events', {
    token: bob,
    body: { type: 'bob.private', payload: { card: '4242' } },
  });
  b.eventId = event.body.event_id;
  b.deliveryId = event.body.delivery_ids[0];
  await sql`insert into delivery_attempts (delivery_id, attempt_number, status_code, duration_ms, response_body)
            values (${b.deliveryId}, 1, 500, 3, 'bob response')`.execute(svc.service.database.db);
  // Bob's delivery died: it is in his DLQ.
  await sql`update deliveries set status = 'dead', attempt_count = 1, last_error = 'HTTP 500: bob error'
            where id = ${b.deliveryId}`.execute(svc.service.database.db);
  await sql`insert into dlq (delivery_id, tenant_id, webhook_id, event_id, last_error, attempts)
            values (${b.deliveryId}, 'tenant-b', ${b.webhookId}, ${b.eventId}, 'HTTP 500: bob error', 1)`.execute(
    svc.service.database.db,
  );
  // Alice has something of her own, so that her lists are not trivially empty.
  await svc.call('POST', '/webhooks', {
    token: alice,
    body: { url: 'http://127.0.0.1:9/alice', event_types: ['*'] },
  });
  await svc.call('POST', '/events', { token: alice, body: { type: 'alice.thing', payload: {} } });
});
afterAll(async () => {
  await svc?.stop();
});

/** Nothing of Bob's may appear in an answer to Alice. */
function expectNoLeak(body: unknown) {
  const text = JSON.stringify(body ?? '');
  for (const secretThing of [
    b.webhookId,
    b.secret,
    'bob-secret-path',
    b.eventId,
    b.deliveryId,
    '4242',
    'bob response',
    'bob.private',
    'bob error',
  ]) {
    expect(text).not.toContain(secretThing);
  }
}

type Route = [method: string, path: () => string, body: unknown, status: number, code: string];

const routes: Route[] = [
  ['GET', () => `/webhooks/${b.webhookId}`, undefined, 404, 'not_found'],
  ['GET', () => `/webhooks/${b.webhookId}?tenant_id=tenant-b`, undefined, 403, 'forbidden'],
  ['GET', () => `/webhooks/${b.webhookId}/secret`, undefined, 404, 'not_found'],
  ['GET', () => `/webhooks/${b.webhookId}/secret?tenant_id=tenant-b`, undefined, 403, 'forbidden'],
  ['PATCH', () => `/webhooks/${b.webhookId}`, { enabled: false }, 404, 'not_found'],
  ['PATCH', () => `/webhooks/${b.webhookId}`, { url: 'https://evil.example/' }, 404, 'not_found'],
  ['PATCH', () => `/webhooks/${b.webhookId}`, { enabled: false, tenant_id: 'tenant-b' }, 403, 'forbidden'],
  ['DELETE', () => `/webhooks/${b.webhookId}`, undefined, 404, 'not_found'],
  ['DELETE', () => `/webhooks/${b.webhookId}?tenant_id=tenant-b`, undefined, 403, 'forbidden'],
  ['POST', () => `/webhooks/${b.webhookId}/rotate-secret`, undefined, 404, 'not_found'],
  ['POST', () => `/webhooks/${b.webhookId}/rotate-secret`, { secret: 'mine-now' }, 404, 'not_found'],
  ['POST', () => `/webhooks/${b.webhookId}/rotate-secret`, { tenant_id: 'tenant-b' }, 403, 'forbidden'],
  [
    'POST',
    () => '/webhooks',
    { url: 'https://example.com/', event_types: ['*'], tenant_id: 'tenant-b' },
    403,
    'forbidden',
  ],
  ['GET', () => '/webhooks?tenant_id=tenant-b', undefined, 403, 'forbidden'],
  ['POST', () => '/events', { type: 'bob.private', payload: {}, tenant_id: 'tenant-b' }, 403, 'forbidden'],
  ['GET', () => '/events?tenant_id=tenant-b', undefined, 403, 'forbidden'],
  ['GET', () => `/events/${b.eventId}`, undefined, 404, 'not_found'],
  ['GET', () => `/events/${b.eventId}?tenant_id=tenant-b`, undefined, 403, 'forbidden'],
  ['GET', () => `/deliveries/${b.deliveryId}`, undefined, 404, 'not_found'],
  ['GET', () => `/deliveries/${b.deliveryId}?tenant_id=tenant-b`, undefined, 403, 'forbidden'],
  ['POST', () => `/deliveries/${b.deliveryId}/retry`, undefined, 404, 'not_found'],
  ['POST', () => `/deliveries/${b.deliveryId}/retry`, { tenant_id: 'tenant-b' }, 403, 'forbidden'],
  ['POST', () => `/webhooks/${b.webhookId}/recover`, { since: '2020-01-01T00:00:00Z' }, 404, 'not_found'],
  [
    'POST',
    () => `/webhooks/${b.webhookId}/recover`,
    { since: '2020-01-01T00:00:00Z', tenant_id: 'tenant-b' },
    403,
    'forbidden',
  ],
  ['POST', () => `/webhooks/${b.webhookId}/filter-test`, { type: 'a.b', data: {} }, 404, 'not_found'],
  [
    'POST',
    () => `/webhooks/${b.webhookId}/filter-test?tenant_id=tenant-b`,
    { type: 'a.b', data: {} },
    403,
    'forbidden',
  ],
  ['GET', () => '/event-types?tenant_id=tenant-b', undefined, 403, 'forbidden'],
  ['PUT', () => '/event-types/bob.private', { tenant_id: 'tenant-b' }, 403, 'forbidden'],
  ['GET', () => '/event-types/bob.private?tenant_id=tenant-b', undefined, 403, 'forbidden'],
  ['DELETE', () => '/event-types/bob.private?tenant_id=tenant-b', undefined, 403, 'forbidden'],
  ['PUT', () => '/tenants/tenant-b/settings', { unknown_event_types: 'reject' }, 403, 'forbidden'],
  ['GET', () => '/dlq?tenant_id=tenant-b', undefined, 403, 'forbidden'],
  ['POST', () => `/dlq/${b.deliveryId}/retry`, undefined, 404, 'not_found'],
  ['POST', () => `/dlq/${b.deliveryId}/retry`, { tenant_id: 'tenant-b' }, 403, 'forbidden'],
  ['POST', () => '/dlq/retry', { tenant_id: 'tenant-b' }, 403, 'forbidden'],
  ['DELETE', () => `/dlq/${b.deliveryId}`, undefined, 404, 'not_found'],
  ['DELETE', () => `/dlq/${b.deliveryId}?tenant_id=tenant-b`, undefined, 403, 'forbidden'],
  ['GET', () => '/audit-log?tenant_id=tenant-b', undefined, 403, 'forbidden'],
  ['POST', () => '/tenants/tenant-b/revoke-tokens', undefined, 403, 'forbidden'],
  ['POST', () => '/tenants/tenant-a/revoke-tokens', undefined, 403, 'forbidden'],
  ['POST', () => '/portal/sessions', { tenant_id: 'tenant-b' }, 403, 'forbidden'],
];

describe("tenant A's token against tenant B's objects", () => {
  it.each(routes)('%s %s → %i', async (method, path, body, status, code) => {
    const res = await svc.call(method, path(), { token: alice, ...(body !== undefined ? { body } : {}) });
    expect(res.status).toBe(status);
    expect(res.body.error.code).toBe(code);
    expectNoLeak(res.body);
  });

  it('the table above covers every route of webhooks, events, deliveries, DLQ and audit log', () => {
    const deps = {
      ...svc.service,
      db: svc.service.database.db,
      pool: svc.service.database.pool,
    } as unknown as AppDeps;
    // Quotas are keyed by tenant, not by object id: quotas.test.ts holds them to the 403 rule.
    const registered = registeredRoutes(deps, (feature) => feature.name !== 'quotas').map(
      ({ method, path }) => `${method} ${path}`,
    );
    const walked = new Set(
      routes.map(
        ([method, path]) =>
          `${method} ${path()
            .split('?')[0]!
            .replace(/[0-9a-f-]{36}/g, ':id')
            .replace(/^\/tenants\/[^/]+/, '/tenants/:tenant_id')
            .replace(/^\/event-types\/[^/]+/, '/event-types/:name')}`,
      ),
    );
    walked.add('GET /webhooks').add('GET /events').add('GET /dlq').add('GET /audit-log'); // lists: next test
    const missing = registered.filter((route) => !walked.has(route));
    expect(missing, 'add a foreign-token row for each new route').toEqual([]);
  });

  it('lists show only her own objects', async () => {
    for (const path of [
      '/webhooks',
      '/webhooks?limit=500',
      '/events',
      '/events?type=bob.private',
      '/dlq?limit=500',
      `/dlq?webhook_id=${b.webhookId}`,
      '/audit-log?limit=500',
    ]) {
      const res = await svc.call('GET', path, { token: alice });
      expect(res.status).toBe(200);
      expectNoLeak(res.body);
      expect(res.body.entries.every((e: any) => e.tenant_id === 'tenant-a')).toBe(true);
    }
    expect((await svc.call('GET', '/webhooks', { token: alice })).body.total).toBe(1);
    expect((await svc.call('GET', '/events?type=bob.private', { token: alice })).body.total).toBe(0);
    expect((await svc.call('GET', `/dlq?webhook_id=${b.webhookId}`, { token: alice })).body.total).toBe(0);
    // A bulk retry naming Bob's webhook finds nothing of Bob's to retry.
    const bulk = await svc.call('POST', '/dlq/retry', { token: alice, body: { webhook_id: b.webhookId } });
    expect(bulk.body).toEqual({ requeued: 0, skipped_webhook_disabled: 0 });
  });

  it("left B's data exactly as it was, and wrote nothing in B's name", async () => {
    const db = svc.service.database.db;
    const webhook = await db
      .selectFrom('webhooks')
      .selectAll()
      .where('id', '=', b.webhookId)
      .executeTakeFirstOrThrow();
    expect(webhook).toMatchObject({
      url: b.url,
      enabled: true,
      previous_secret: null,
      tenant_id: 'tenant-b',
    });
    expect(openSecrets(testSecretBox(), b.webhookId, webhook).secret).toBe(b.secret);
    const dlq = await db.selectFrom('dlq').select(['delivery_id', 'tenant_id']).execute();
    expect(dlq).toEqual([{ delivery_id: b.deliveryId, tenant_id: 'tenant-b' }]);
    const delivery = await db
      .selectFrom('deliveries')
      .select(['status', 'attempt_count'])
      .where('id', '=', b.deliveryId)
      .executeTakeFirstOrThrow();
    expect(delivery).toEqual({ status: 'dead', attempt_count: 1 });
    const bEvents = await db.selectFrom('events').select('id').where('tenant_id', '=', 'tenant-b').execute();
    expect(bEvents.map((e) => e.id)).toEqual([b.eventId]);
    const audit = await db
      .selectFrom('audit_log')
      .select(['actor', 'tenant_id'])
      .where('actor', '=', 'tenant-a:tenant')
      .execute();
    expect(audit.every((row) => row.tenant_id === 'tenant-a')).toBe(true);
    // B still sees all of it.
    expect((await svc.call('GET', `/webhooks/${b.webhookId}`, { token: bob })).status).toBe(200);
    expect((await svc.call('GET', `/deliveries/${b.deliveryId}`, { token: bob })).body.attempts).toHaveLength(
      1,
    );
  });

  it('an admin reaches any tenant, and naming the wrong tenant is a 404', async () => {
    expect((await svc.call('GET', `/webhooks/${b.webhookId}`, { token: admin })).status).toBe(200);
    expect((await svc.call('GET', `/events/${b.eventId}`, { token: admin })).status).toBe(200);
    expect(
      (await svc.call('GET', `/deliveries/${b.deliveryId}?tenant_id=tenant-b`, { token: admin })).status,
    ).toBe(200);
    expect(
      (await svc.call('GET', `/webhooks/${b.webhookId}?tenant_id=tenant-a`, { token: admin })).status,
    ).toBe(404);
    expect((await svc.call('GET', '/events?tenant_id=tenant-b', { token: admin })).body.total).toBe(1);
    const emitted = await svc.call('POST', '/events', {
      token: admin,
      body: { type: 'ops.made', payload: {}, tenant_id: 'tenant-b' },
    });
    expect(emitted.status).toBe(202);
    expect(emitted.body.webhooks_queued).toBe(1);
  });
});
