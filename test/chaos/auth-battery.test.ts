/**
 * Auth battery: on every route of the OpenAPI document (and the quota routes), every kind of
 * bad credential gets a 401, and a valid token of another tenant gets a 403 or 404 — never a
 * byte of the other tenant's data, and nothing of theirs changed.
 */
import crypto from 'node:crypto';
import { SignJWT } from 'jose';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, TEST_JWT_SECRET, testSecretBox, type TestService } from '../helpers/service.js';
import { openSecrets } from '../../src/webhooks/webhook-secrets.js';
import { apiRoutes, report } from './support.js';

let svc: TestService;
let alice: string;
const victim = {
  tenant: 'tenant-victim',
  token: '',
  webhookId: '',
  secret: '',
  url: 'https://victim.example/very-secret-path',
  eventId: '',
  deliveryId: '',
};

const ROUTES = apiRoutes();

/** The route with the victim's object in its path. */
function victimPath(template: string): string {
  return template.replace(/\{([^}]+)\}/g, (_m, name: string) => {
    if (name === 'tenant_id') return victim.tenant;
    // An event type is named by the caller; catalogs are per tenant.
    if (name === 'name') return 'auth.battery';
    if (template.startsWith('/events')) return victim.eventId;
    if (template.startsWith('/deliveries') || template.startsWith('/dlq')) return victim.deliveryId;
    return victim.webhookId;
  });
}

/** A body the route would accept, so that only the credential decides. */
function bodyFor(method: string, template: string): unknown {
  if (method === 'GET' || method === 'DELETE') return undefined;
  if (template === '/webhooks') return { url: 'https://example.com/x', event_types: ['*'] };
  if (template === '/events') return { type: 'auth.battery', payload: {} };
  if (template === '/webhooks/{id}') return { enabled: false };
  if (template === '/webhooks/{id}/recover') return { since: '2020-01-01T00:00:00Z' };
  if (template === '/webhooks/{id}/filter-test') return { type: 'auth.battery', data: {} };
  if (template === '/quotas/{tenant_id}') return { max_events_per_sec: 1 };
  if (template === '/tenants/{tenant_id}/settings') return { unknown_event_types: 'accept' };
  return {};
}

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

beforeAll(async () => {
  svc = await startTestService({ NUM_WORKERS: '0' });
  alice = await svc.token('tenant-alice');
  victim.token = await svc.token(victim.tenant);
  const webhook = await svc.call('POST', '/webhooks', {
    token: victim.token,
    body: { url: victim.url, event_types: ['*'] },
  });
  victim.webhookId = webhook.body.id;
  victim.secret = webhook.body.secret;
  const event = await svc.call('POST', '/events', {
    token: victim.token,
    body: { type: 'victim.private', payload: { card: '4111-1111' } },
  });
  victim.eventId = event.body.event_id;
  victim.deliveryId = event.body.delivery_ids[0];
  const db = svc.service.database.db;
  await sql`update deliveries set status = 'dead', attempt_count = 1, last_error = 'HTTP 500: victim error'
            where id = ${victim.deliveryId}`.execute(db);
  await sql`insert into dlq (delivery_id, tenant_id, webhook_id, event_id, last_error, attempts)
            values (${victim.deliveryId}, ${victim.tenant}, ${victim.webhookId}, ${victim.eventId},
                    'HTTP 500: victim error', 1)`.execute(db);
  await svc.call('POST', '/webhooks', {
    token: alice,
    body: { url: 'https://alice.example/hook', event_types: ['*'] },
  });
});
afterAll(async () => {
  await svc?.stop();
});

/** Nothing of the victim's in an answer. */
function expectNoLeak(text: string, what: string) {
  for (const secret of [
    victim.webhookId,
    victim.secret,
    'very-secret-path',
    victim.eventId,
    victim.deliveryId,
    '4111-1111',
    'victim.private',
    'victim error',
  ]) {
    expect(text, `${what} leaks ${secret}`).not.toContain(secret);
  }
}

async function badCredentials(): Promise<[name: string, header: string | undefined][]> {
  const key = new TextEncoder().encode(TEST_JWT_SECRET);
  const now = Math.floor(Date.now() / 1000);
  const claims = { tenant_id: victim.tenant, role: 'admin' };
  const valid = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().sign(key);
  const [header, payload] = valid.split('.');
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return [
    ['no Authorization header', undefined],
    ['empty bearer', 'Bearer '],
    ['garbage', 'Bearer garbage'],
    ['three dots', 'Bearer a.b.c'],
    ['basic auth', `Basic ${Buffer.from('admin:admin').toString('base64')}`],
    ['token without a scheme', valid],
    ['two tokens', `Bearer ${valid} ${valid}`],
    ['alg none, no signature', `Bearer ${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claims)}.`],
    ['alg none, a signature', `Bearer ${b64url({ alg: 'none' })}.${b64url(claims)}.c2ln`],
    ['alg None', `Bearer ${b64url({ alg: 'None' })}.${b64url(claims)}.`],
    [
      'wrong key',
      `Bearer ${await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode('not-the-secret-0123456789'))}`,
    ],
    [
      'HS512 with the right key',
      `Bearer ${await new SignJWT(claims).setProtectedHeader({ alg: 'HS512' }).sign(key)}`,
    ],
    ['RS256', `Bearer ${await new SignJWT(claims).setProtectedHeader({ alg: 'RS256' }).sign(privateKey)}`],
    [
      'expired',
      `Bearer ${await new SignJWT(claims)
        .setProtectedHeader({ alg: 'HS256' })
        .setExpirationTime(now - 60)
        .sign(key)}`,
    ],
    [
      'not yet valid',
      `Bearer ${await new SignJWT(claims)
        .setProtectedHeader({ alg: 'HS256' })
        .setNotBefore(now + 3600)
        .sign(key)}`,
    ],
    [
      'payload swapped under a valid signature',
      `Bearer ${header}.${b64url({ ...claims, tenant_id: 'other' })}.${valid.split('.')[2]}`,
    ],
    ['signature cut short', `Bearer ${header}.${payload}.${valid.split('.')[2]!.slice(0, 10)}`],
    [
      'no tenant_id',
      `Bearer ${await new SignJWT({ role: 'admin' }).setProtectedHeader({ alg: 'HS256' }).sign(key)}`,
    ],
    [
      'numeric tenant_id',
      `Bearer ${await new SignJWT({ tenant_id: 7 }).setProtectedHeader({ alg: 'HS256' }).sign(key)}`,
    ],
    [
      'unknown role',
      `Bearer ${await new SignJWT({ tenant_id: 'x', role: 'superuser' }).setProtectedHeader({ alg: 'HS256' }).sign(key)}`,
    ],
    ['the secret itself', `Bearer ${TEST_JWT_SECRET}`],
  ];
}

describe('bad credentials on every route', () => {
  it('401 in the error shape, nothing of anyone disclosed', async () => {
    const credentials = await badCredentials();
    const failures: string[] = [];
    let requests = 0;
    for (const [method, template] of ROUTES) {
      for (const [name, authorization] of credentials) {
        const headers: Record<string, string> = authorization ? { authorization } : {};
        const body = bodyFor(method, template);
        const res = await svc.call(
          method,
          `${victimPath(template)}?access_token=${encodeURIComponent(alice)}`,
          {
            headers,
            ...(body !== undefined ? { body } : {}),
          },
        );
        requests++;
        const what = `${method} ${template} with ${name}`;
        if (res.status !== 401 || res.body?.error?.code !== 'unauthorized') {
          failures.push(`${what} → ${res.status} ${JSON.stringify(res.body).slice(0, 100)}`);
        }
        expectNoLeak(JSON.stringify(res.body), what);
      }
    }
    report('auth: bad credentials', {
      routes: ROUTES.length,
      credentials: credentials.length,
      requests,
      not_401: failures.length,
    });
    expect(failures).toEqual([]);
  });
});

describe("a tenant token against another tenant's objects on every route", () => {
  it('403 when naming the other tenant, 404 for its objects, never its data', async () => {
    const failures: string[] = [];
    let requests = 0;
    for (const [method, template] of ROUTES) {
      // An event type's name is the caller's own key in its own catalog, not another tenant's object.
      const hasObject =
        template.includes('{') && !template.includes('{tenant_id}') && !template.includes('{name}');
      const body = bodyFor(method, template);
      const attempts: [string, string, unknown, number[]][] = [];
      // The victim's object in the path: 404, as if it did not exist.
      if (hasObject) attempts.push(['object in path', victimPath(template), body, [404]]);
      // Naming the victim's tenant, in the query and (where there is a body) in the body: 403.
      // A route that takes a body reads tenant_id from the body and ignores the query: then the
      // request acts for the caller (a 2xx in the caller's own tenant, or 404 for the victim's object).
      attempts.push([
        'tenant_id in query',
        `${victimPath(template)}?tenant_id=${victim.tenant}`,
        body,
        body === undefined ? [403] : [403, 404, 200, 201, 202],
      ]);
      if (body !== undefined && typeof body === 'object') {
        attempts.push([
          'tenant_id in body',
          victimPath(template),
          { ...body, tenant_id: victim.tenant },
          [403],
        ]);
      }
      if (template.includes('{tenant_id}'))
        attempts.push(['tenant in path', victimPath(template), body, [403]]);
      for (const [how, path, sent, allowed] of attempts) {
        const res = await svc.call(method, path, {
          token: alice,
          ...(sent !== undefined ? { body: sent } : {}),
        });
        requests++;
        const what = `${method} ${template} (${how})`;
        // A schema that has no tenant_id field may refuse the body as invalid before looking further.
        const ok = allowed.includes(res.status) || (how === 'tenant_id in body' && res.status === 400);
        if (!ok) failures.push(`${what} → ${res.status} ${JSON.stringify(res.body).slice(0, 120)}`);
        if (res.status < 300) expect(JSON.stringify(res.body), what).not.toContain(victim.tenant);
        expectNoLeak(JSON.stringify(res.body), what);
      }
    }
    report('auth: foreign tenant', { routes: ROUTES.length, requests, unexpected: failures.length });
    expect(failures).toEqual([]);
  });

  it("lists without a tenant show only the caller's own objects", async () => {
    let entries = 0;
    for (const path of [
      '/webhooks?limit=500',
      '/events?limit=500',
      '/dlq?limit=500',
      '/audit-log?limit=500',
    ]) {
      const res = await svc.call('GET', path, { token: alice });
      expect(res.status, path).toBe(200);
      expectNoLeak(JSON.stringify(res.body), path);
      expect(
        res.body.entries.every((e: { tenant_id?: string }) => e.tenant_id === 'tenant-alice'),
        path,
      ).toBe(true);
      entries += res.body.entries.length;
    }
    report('auth: own lists', { lists: 4, entries_seen: entries, foreign_entries: 0 });
  });

  it("left the victim's data as it was", async () => {
    const db = svc.service.database.db;
    const webhook = await db
      .selectFrom('webhooks')
      .selectAll()
      .where('id', '=', victim.webhookId)
      .executeTakeFirstOrThrow();
    expect(webhook).toMatchObject({ url: victim.url, enabled: true, previous_secret: null });
    expect(openSecrets(testSecretBox(), victim.webhookId, webhook).secret).toBe(victim.secret);
    // Nobody revoked the victim's tokens.
    const tenant = await db
      .selectFrom('tenants')
      .select('tokens_valid_after')
      .where('id', '=', victim.tenant)
      .executeTakeFirstOrThrow();
    expect(tenant.tokens_valid_after).toBeNull();
    const letter = await db
      .selectFrom('dlq')
      .select('delivery_id')
      .where('delivery_id', '=', victim.deliveryId)
      .execute();
    expect(letter).toHaveLength(1);
    const quota = await db
      .selectFrom('quotas')
      .selectAll()
      .where('tenant_id', '=', victim.tenant)
      .executeTakeFirstOrThrow();
    expect(quota).toMatchObject({
      max_events_per_sec: 100,
      max_concurrent_deliveries: 50,
      max_dlq_size: 100,
    });
    const events = await db
      .selectFrom('events')
      .select('id')
      .where('tenant_id', '=', victim.tenant)
      .execute();
    expect(events.map((e) => e.id)).toEqual([victim.eventId]);
    // The victim still sees all of it.
    expect((await svc.call('GET', `/webhooks/${victim.webhookId}`, { token: victim.token })).status).toBe(
      200,
    );
    report('auth: victim data', {
      webhook_unchanged: true,
      dlq_entries: letter.length,
      events: events.length,
    });
  });
});
