/**
 * The tenant portal over plain HTTP: sign-in links (once, within 10 minutes), the session
 * cookie, tenant isolation by URL, the CSRF check, the headers every page carries, and secrets
 * kept out of the HTML until revealed. The real service, a real receiver on 127.0.0.1.
 */
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { waitForDeliveryStatus } from '../helpers/fixtures.js';
import { receiverPool } from '../helpers/receiver.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
let alice: string;
let bob: string;
let admin: string;
const receivers = receiverPool();
const db = () => svc.service.database.db;

beforeAll(async () => {
  svc = await startTestService({ RETRY_SCHEDULE: '0.05' });
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

async function link(token: string, body?: unknown): Promise<{ url: string; expires_at: string }> {
  const res = await svc.call('POST', '/portal/sessions', { token, body: body ?? {} });
  expect(res.status).toBe(201);
  return res.body;
}

/** Opens a sign-in link; the session cookie, or undefined when refused. */
async function open(url: string): Promise<{ status: number; cookie: string | undefined; setCookie: string }> {
  const res = await fetch(url, { redirect: 'manual' });
  const setCookie = res.headers.get('set-cookie') ?? '';
  return { status: res.status, cookie: setCookie ? setCookie.split(';')[0] : undefined, setCookie };
}

async function signIn(token: string): Promise<string> {
  const opened = await open((await link(token)).url);
  expect(opened.status).toBe(302);
  return opened.cookie!;
}

async function page(
  cookie: string,
  path: string,
): Promise<{ status: number; text: string; headers: Headers }> {
  const res = await fetch(svc.url + path, { headers: { cookie }, redirect: 'manual' });
  return { status: res.status, text: await res.text(), headers: res.headers };
}

const csrfOf = (text: string): string => /name="_csrf" value="([^"]+)"/.exec(text)![1]!;

async function post(
  cookie: string,
  path: string,
  fields: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<{ status: number; location: string | null; text: string }> {
  const res = await fetch(svc.url + path, {
    method: 'POST',
    headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(fields).toString(),
    redirect: 'manual',
  });
  return { status: res.status, location: res.headers.get('location'), text: await res.text() };
}

async function createWebhook(token: string, url: string): Promise<{ id: string; secret: string }> {
  const res = await svc.call('POST', '/webhooks', { token, body: { url, event_types: ['*'] } });
  expect(res.status).toBe(201);
  return res.body;
}

describe('sign-in links', () => {
  it('a link opens once: it sets an HttpOnly, SameSite=Strict cookie (not Secure over plain HTTP from localhost) and redirects to the portal', async () => {
    const { url, expires_at } = await link(alice);
    expect(url).toMatch(new RegExp(`^${svc.url}/portal/sign-in/[A-Za-z0-9_-]+$`));
    const minutes = (Date.parse(expires_at) - Date.now()) / 60_000;
    expect(minutes).toBeGreaterThan(9);
    expect(minutes).toBeLessThanOrEqual(10);
    const first = await open(url);
    expect(first.status).toBe(302);
    expect(first.setCookie).toMatch(
      /^hookrelay_portal=[^;]+; Path=\/portal; Max-Age=43200; HttpOnly; SameSite=Strict$/,
    );
    const second = await open(url);
    expect(second.status).toBe(401);
    expect(second.cookie).toBeUndefined();
    const home = await page(first.cookie!, '/portal/');
    expect(home.status).toBe(200);
    expect(home.text).toContain('hookrelay · alice');
  });

  it('an expired link is refused, and so is one never issued', async () => {
    const { url } = await link(alice);
    await sql`update portal_links set expires_at = now() - interval '1 second' where used_at is null`.execute(
      db(),
    );
    expect((await open(url)).status).toBe(401);
    expect((await open(`${svc.url}/portal/sign-in/${'x'.repeat(43)}`)).status).toBe(401);
  });

  it('an admin names the tenant; a tenant token naming another tenant gets 403; no token gets 401', async () => {
    const cookie = (await open((await link(admin, { tenant_id: 'bob' })).url)).cookie!;
    expect((await page(cookie, '/portal/')).text).toContain('hookrelay · bob');
    expect(
      (await svc.call('POST', '/portal/sessions', { token: alice, body: { tenant_id: 'bob' } })).status,
    ).toBe(403);
    expect((await svc.call('POST', '/portal/sessions', { body: {} })).status).toBe(401);
  });

  it('without a session, or with a forged cookie, the pages answer 401', async () => {
    expect((await page('', '/portal/endpoints')).status).toBe(401);
    expect((await page('hookrelay_portal=eyJhbGciOiJIUzI1NiJ9.e30.x', '/portal/endpoints')).status).toBe(401);
    // An API token is not a session.
    expect((await page(`hookrelay_portal=${alice}`, '/portal/endpoints')).status).toBe(401);
  });
});

describe('the pages', () => {
  it('carry the CSP (no inline script, nothing from elsewhere) and refuse framing', async () => {
    const cookie = await signIn(alice);
    for (const path of ['/portal/', '/portal/endpoints', '/portal/events', '/portal/dlq', '/portal/quotas']) {
      const res = await page(cookie, path);
      expect(res.status, path).toBe(200);
      const csp = res.headers.get('content-security-policy')!;
      expect(csp).toContain("default-src 'none'");
      expect(csp).not.toContain('unsafe-inline');
      expect(csp).toContain("frame-ancestors 'none'");
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      expect(res.text).not.toMatch(/<script|(?:src|href|action)="(?:https?:)?\/\//i);
    }
  });

  it("tenant A's session gets 404 for B's endpoint, event, delivery and dead letter, by URL and by form", async () => {
    const r = await receivers.start({ behaviour: { kind: 'status', status: 500 } });
    const hook = await createWebhook(bob, r.url);
    const sent = await svc.call('POST', '/events', { token: bob, body: { type: 'x', payload: {} } });
    const deliveryId = sent.body.delivery_ids[0] as string;
    await waitForDeliveryStatus(db(), deliveryId, ['dead']);
    const cookie = await signIn(alice);
    for (const path of [
      `/portal/endpoints/${hook.id}`,
      `/portal/events/${sent.body.event_id}`,
      `/portal/deliveries/${deliveryId}`,
    ]) {
      expect((await page(cookie, path)).status, path).toBe(404);
    }
    const csrf = csrfOf((await page(cookie, '/portal/endpoints')).text);
    expect((await post(cookie, `/portal/dlq/${deliveryId}/retry`, { _csrf: csrf })).status).toBe(404);
    expect((await post(cookie, `/portal/dlq/${deliveryId}/delete`, { _csrf: csrf })).status).toBe(404);
    expect((await post(cookie, `/portal/endpoints/${hook.id}/rotate`, { _csrf: csrf })).status).toBe(404);
    expect((await post(cookie, `/portal/endpoints/${hook.id}/reveal`, { _csrf: csrf })).status).toBe(404);
    expect((await post(cookie, '/portal/dlq/retry', { _csrf: csrf, webhook_id: hook.id })).status).toBe(404);
    const still = await svc.call('GET', `/dlq?webhook_id=${hook.id}`, { token: bob });
    expect(still.body.total).toBe(1);
  });

  it('a cross-site form post without the CSRF token changes nothing; with it, the change is audited as the portal', async () => {
    const cookie = await signIn(alice);
    const before = await svc.call('GET', '/webhooks', { token: alice });
    const form = { url: 'http://127.0.0.1:9/hook', event_types: '*' };
    expect((await post(cookie, '/portal/endpoints', form)).status).toBe(403);
    expect((await post(cookie, '/portal/endpoints', { ...form, _csrf: 'forged' })).status).toBe(403);
    const csrf = csrfOf((await page(cookie, '/portal/endpoints')).text);
    const crossSite = await post(
      cookie,
      '/portal/endpoints',
      { ...form, _csrf: csrf },
      { origin: 'https://evil.example' },
    );
    expect(crossSite.status).toBe(403);
    expect((await svc.call('GET', '/webhooks', { token: alice })).body.total).toBe(before.body.total);

    const created = await post(cookie, '/portal/endpoints', { ...form, _csrf: csrf }, { origin: svc.url });
    expect(created.status).toBe(302);
    const id = /\/portal\/endpoints\/([0-9a-f-]{36})/.exec(created.location!)![1]!;
    const audit = await svc.call('GET', `/audit-log?object_id=${id}`, { token: alice });
    expect(audit.body.entries[0]).toMatchObject({ action: 'webhook.created', actor: 'alice:tenant' });
    expect(audit.body.entries[0].details.via).toBe('portal');
  });

  it('no secret appears in the HTML until revealed, and revealing it is a POST', async () => {
    const r = await receivers.start();
    const hook = await createWebhook(alice, r.url);
    const cookie = await signIn(alice);
    for (const path of ['/portal/endpoints', `/portal/endpoints/${hook.id}`, '/portal/']) {
      expect((await page(cookie, path)).text).not.toContain(hook.secret.slice(6, 30));
    }
    const csrf = csrfOf((await page(cookie, `/portal/endpoints/${hook.id}`)).text);
    const revealed = await post(cookie, `/portal/endpoints/${hook.id}/reveal`, { _csrf: csrf });
    expect(revealed.status).toBe(200);
    expect(revealed.text).toContain(hook.secret);
  });
});
