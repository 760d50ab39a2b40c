import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { listAnswerSchema } from '../../src/http/common-schemas.js';
import {
  webhookSecretSchema,
  webhookViewSchema,
  webhookWithSecretSchema,
} from '../../src/webhooks/webhook-schemas.js';
import { jobsOf } from '../helpers/fixtures.js';
import { expectSchema } from '../helpers/schema.js';
import { startTestService, testSecretBox, type TestService } from '../helpers/service.js';
import { openSecrets } from '../../src/webhooks/webhook-secrets.js';

let svc: TestService;
let acme: string;
let admin: string;

beforeAll(async () => {
  svc = await startTestService({ NUM_WORKERS: '0' });
  acme = await svc.token('acme');
  admin = await svc.token('ops', { admin: true });
});
afterAll(async () => {
  await svc?.stop();
});

const db = () => svc.service.database.db;

async function auditRows(objectId: string) {
  const result = await sql<{
    actor: string;
    action: string;
    object_type: string;
    object_id: string;
    tenant_id: string;
    request_id: string;
    details: Record<string, unknown>;
  }>`select actor, action, object_type, object_id, tenant_id, request_id, details
     from audit_log where object_id = ${objectId} order by id`.execute(db());
  return result.rows;
}

async function createWebhook(body: Record<string, unknown>, token = acme) {
  const res = await svc.call('POST', '/webhooks', { token, body });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

describe('POST /webhooks', () => {
  it('registers a webhook as the contract shows, with a generated whsec_ secret', async () => {
    const res = await svc.call('POST', '/webhooks', {
      token: acme,
      body: { url: 'http://127.0.0.1:4000/hooks', event_types: ['invoice.paid', 'user.*'] },
      headers: { 'x-request-id': 'req-create-1' },
    });
    expect(res.status).toBe(201);
    expectSchema(webhookWithSecretSchema, res.body);
    expect(res.body).toMatchObject({
      url: 'http://127.0.0.1:4000/hooks',
      event_types: ['invoice.paid', 'user.*'],
      tenant_id: 'acme',
      enabled: true,
    });
    expect(res.body.secret).toMatch(/^whsec_[A-Za-z0-9+/]+={0,2}$/);
    expect(Buffer.from(res.body.secret.slice(6), 'base64').length).toBeGreaterThanOrEqual(24);
    expect(Date.parse(res.body.created_at)).toBeGreaterThan(Date.now() - 60_000);

    const stored = await db()
      .selectFrom('webhooks')
      .selectAll()
      .where('id', '=', res.body.id)
      .executeTakeFirst();
    // Stored encrypted under the test key, bound to this webhook.
    expect(stored?.secret_key_id).toBe('default');
    expect(stored?.secret).toMatch(/^v1:default:/);
    expect(openSecrets(testSecretBox(), res.body.id, stored!).secret).toBe(res.body.secret);
    const tenant = await db()
      .selectFrom('quotas')
      .selectAll()
      .where('tenant_id', '=', 'acme')
      .executeTakeFirst();
    expect(tenant).toMatchObject({
      max_events_per_sec: 100,
      max_concurrent_deliveries: 50,
      max_dlq_size: 100,
    });
  });

  it('keeps a given secret exactly as given, and the optional fields', async () => {
    const body = await createWebhook({
      url: 'https://example.com/h',
      event_types: ['*'],
      secret: 'my plain secret ✓',
      description: 'billing',
      timeout_ms: 30000,
    });
    expect(body).toMatchObject({ secret: 'my plain secret ✓', description: 'billing', timeout_ms: 30000 });
    const whsec = await createWebhook({
      url: 'https://example.com/h',
      event_types: ['*'],
      secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
    });
    expect(whsec.secret).toBe('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw');
  });

  it('writes an audit row in the same transaction, without the secret', async () => {
    const res = await svc.call('POST', '/webhooks', {
      token: acme,
      body: { url: 'https://example.com/audited', event_types: ['a.b'], secret: 'audit-secret-value' },
      headers: { 'x-request-id': 'req-audit-1' },
    });
    const rows = await auditRows(res.body.id);
    expect(rows).toEqual([
      {
        actor: 'acme:tenant',
        action: 'webhook.created',
        object_type: 'webhook',
        object_id: res.body.id,
        tenant_id: 'acme',
        request_id: 'req-audit-1',
        details: expect.objectContaining({ url: 'https://example.com/audited', event_types: ['a.b'] }),
      },
    ]);
    expect(JSON.stringify(rows)).not.toContain('audit-secret-value');
  });

  it('a failing audit insert leaves no webhook behind', async () => {
    await sql`alter table audit_log add constraint refuse_webhook_audit check (action <> 'webhook.created') not valid`.execute(
      db(),
    );
    try {
      const before = await sql<{ n: number }>`select count(*)::int as n from webhooks`.execute(db());
      const res = await svc.call('POST', '/webhooks', {
        token: acme,
        body: { url: 'https://example.com/never', event_types: ['x'] },
      });
      expect(res.status).toBe(500);
      expect(res.body.error.code).toBe('internal_error');
      const after = await sql<{ n: number }>`select count(*)::int as n from webhooks`.execute(db());
      expect(after.rows[0]!.n).toBe(before.rows[0]!.n);
    } finally {
      await sql`alter table audit_log drop constraint refuse_webhook_audit`.execute(db());
    }
  });

  it('an admin may create for any tenant; a tenant token naming another gets 403', async () => {
    const forOther = await createWebhook(
      { url: 'https://example.com/x', event_types: ['*'], tenant_id: 'globex' },
      admin,
    );
    expect(forOther.tenant_id).toBe('globex');
    expect((await auditRows(forOther.id))[0]).toMatchObject({ actor: 'ops:admin', tenant_id: 'globex' });
    const res = await svc.call('POST', '/webhooks', {
      token: acme,
      body: { url: 'https://example.com/x', event_types: ['*'], tenant_id: 'globex' },
    });
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('forbidden');
  });
});

describe('GET /webhooks', () => {
  let tenantToken: string;
  const ids: string[] = [];
  beforeAll(async () => {
    tenantToken = await svc.token('lister');
    for (let i = 0; i < 5; i++) {
      const body = await createWebhook(
        { url: `https://example.com/${i}`, event_types: ['*'], enabled: i % 2 === 0 },
        tenantToken,
      );
      ids.push(body.id);
    }
  });

  it('answers the list shape, newest first, without secrets', async () => {
    const res = await svc.call('GET', '/webhooks', { token: tenantToken });
    expect(res.status).toBe(200);
    expectSchema(listAnswerSchema(webhookViewSchema), res.body);
    expect(res.body).toMatchObject({ total: 5, limit: 50, offset: 0 });
    expect(res.body.entries.map((w: any) => w.id)).toEqual([...ids].reverse());
    for (const entry of res.body.entries) {
      expect(entry).not.toHaveProperty('secret');
      expect(entry).not.toHaveProperty('previous_secret');
    }
  });

  it('pages with limit and offset, and filters by enabled', async () => {
    const page = await svc.call('GET', '/webhooks?limit=2&offset=1', { token: tenantToken });
    expect(page.body).toMatchObject({ total: 5, limit: 2, offset: 1 });
    expect(page.body.entries.map((w: any) => w.id)).toEqual([ids[3], ids[2]]);
    const disabled = await svc.call('GET', '/webhooks?enabled=false', { token: tenantToken });
    expect(disabled.body.total).toBe(2);
    expect(
      disabled.body.entries.every(
        (w: any) => w.enabled === false && w.disabled_reason === 'disabled by lister:tenant',
      ),
    ).toBe(true);
  });

  it('limit above 500 is a 400; 500 is fine', async () => {
    const res = await svc.call('GET', '/webhooks?limit=501', { token: tenantToken });
    expect(res.status).toBe(400);
    expect(res.body.error.details).toEqual([{ field: '/limit', message: expect.any(String) }]);
    expect((await svc.call('GET', '/webhooks?limit=500', { token: tenantToken })).status).toBe(200);
    expect((await svc.call('GET', '/webhooks?limit=0', { token: tenantToken })).status).toBe(400);
    expect((await svc.call('GET', '/webhooks?offset=-1', { token: tenantToken })).status).toBe(400);
    expect((await svc.call('GET', '/webhooks?colour=red', { token: tenantToken })).status).toBe(400);
  });

  it('an admin sees every tenant, or the one it names', async () => {
    const all = await svc.call('GET', '/webhooks?limit=500', { token: admin });
    expect(new Set(all.body.entries.map((w: any) => w.tenant_id))).toEqual(
      new Set(['acme', 'globex', 'lister']),
    );
    const one = await svc.call('GET', '/webhooks?tenant_id=lister', { token: admin });
    expect(one.body.total).toBe(5);
  });
});

describe('GET, PATCH, DELETE /webhooks/:id', () => {
  it('GET shows the webhook without secret; GET …/secret shows the secret', async () => {
    const created = await createWebhook({ url: 'https://example.com/g', event_types: ['a'] });
    const res = await svc.call('GET', `/webhooks/${created.id}`, { token: acme });
    expect(res.status).toBe(200);
    expectSchema(webhookViewSchema, res.body);
    expect(res.body).not.toHaveProperty('secret');
    const { secret: _secret, ...withoutSecret } = created;
    expect(res.body).toEqual(withoutSecret);
    const secret = await svc.call('GET', `/webhooks/${created.id}/secret`, { token: acme });
    expectSchema(webhookSecretSchema, secret.body);
    expect(secret.body).toEqual({ secret: created.secret });
  });

  it('unknown ids and non-UUIDs are 404', async () => {
    for (const id of ['00000000-0000-4000-8000-000000000000', 'nope', "1' or '1'='1"]) {
      const res = await svc.call('GET', `/webhooks/${encodeURIComponent(id)}`, { token: acme });
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe('not_found');
    }
  });

  it('PATCH changes fields, rechecks the URL, and audits the difference', async () => {
    const created = await createWebhook({
      url: 'https://example.com/p',
      event_types: ['a'],
      description: 'x',
    });
    const res = await svc.call('PATCH', `/webhooks/${created.id}`, {
      token: acme,
      body: { url: 'https://example.com/p2', event_types: ['b.*', 'c'], description: null, timeout_ms: 500 },
      headers: { 'x-request-id': 'req-patch-1' },
    });
    expect(res.status).toBe(200);
    expectSchema(webhookViewSchema, res.body);
    expect(res.body).toMatchObject({
      url: 'https://example.com/p2',
      event_types: ['b.*', 'c'],
      description: null,
      timeout_ms: 500,
    });
    expect(Date.parse(res.body.updated_at)).toBeGreaterThanOrEqual(Date.parse(created.updated_at));
    const audit = (await auditRows(created.id)).at(-1)!;
    expect(audit).toMatchObject({
      action: 'webhook.updated',
      request_id: 'req-patch-1',
      actor: 'acme:tenant',
    });
    expect(audit.details.changes).toEqual({
      url: { from: 'https://example.com/p', to: 'https://example.com/p2' },
      event_types: { from: ['a'], to: ['b.*', 'c'] },
      description: { from: 'x', to: null },
      timeout_ms: { from: null, to: 500 },
    });

    const blocked = await svc.call('PATCH', `/webhooks/${created.id}`, {
      token: acme,
      body: { url: 'http://10.0.0.1/' },
    });
    expect(blocked.status).toBe(400);
    expect(blocked.body.error.details).toEqual([
      { field: '/url', message: expect.stringMatching(/private/) },
    ]);
    const empty = await svc.call('PATCH', `/webhooks/${created.id}`, { token: acme, body: {} });
    expect(empty.status).toBe(400);
    const secretChange = await svc.call('PATCH', `/webhooks/${created.id}`, {
      token: acme,
      body: { secret: 'x' },
    });
    expect(secretChange.status).toBe(400);
    // The field is known elsewhere: the answer says where.
    expect(secretChange.body.error.details).toEqual([
      { field: '/secret', message: 'cannot be changed with PATCH; use POST /webhooks/:id/rotate-secret' },
    ]);
  });

  it('PATCH enabled=false records who disabled it and when; enabled=true clears it', async () => {
    const created = await createWebhook({ url: 'https://example.com/e', event_types: ['a'] });
    await sql`update webhooks set failing_since = now() where id = ${created.id}`.execute(db());
    const off = await svc.call('PATCH', `/webhooks/${created.id}`, { token: acme, body: { enabled: false } });
    expect(off.body).toMatchObject({ enabled: false, disabled_reason: 'disabled by acme:tenant' });
    expect(Date.parse(off.body.disabled_at)).toBeGreaterThan(Date.now() - 60_000);
    // Disabling again keeps the first reason and time.
    const again = await svc.call('PATCH', `/webhooks/${created.id}`, {
      token: admin,
      body: { enabled: false },
    });
    expect(again.body).toMatchObject({
      disabled_reason: 'disabled by acme:tenant',
      disabled_at: off.body.disabled_at,
    });
    const on = await svc.call('PATCH', `/webhooks/${created.id}`, { token: acme, body: { enabled: true } });
    expect(on.body).toMatchObject({
      enabled: true,
      disabled_reason: null,
      disabled_at: null,
      failing_since: null,
    });
  });

  it('re-enabling queues the deliveries that were paused meanwhile, in the same transaction', async () => {
    const created = await createWebhook({ url: 'https://example.com/paused', event_types: ['p.*'] });
    const emitted = await svc.call('POST', '/events', { token: acme, body: { type: 'p.one', payload: {} } });
    const { id: deliveryId } = await db()
      .selectFrom('deliveries')
      .select('id')
      .where('event_id', '=', emitted.body.event_id)
      .where('webhook_id', '=', created.id)
      .executeTakeFirstOrThrow();
    await svc.call('PATCH', `/webhooks/${created.id}`, { token: acme, body: { enabled: false } });
    // What the delivery side does when it meets a disabled webhook: the delivery waits, its job is done.
    await sql`update deliveries set status = 'paused' where id = ${deliveryId}`.execute(db());
    await sql`delete from graphile_worker._private_jobs`.execute(db());

    const on = await svc.call('PATCH', `/webhooks/${created.id}`, { token: acme, body: { enabled: true } });
    expect(on.status).toBe(200);
    const delivery = await db()
      .selectFrom('deliveries')
      .select('status')
      .where('id', '=', deliveryId)
      .executeTakeFirst();
    expect(delivery?.status).toBe('pending');
    const jobs = await jobsOf(db(), deliveryId);
    expect(jobs.map((j) => j.payload)).toEqual([expect.objectContaining({ id: deliveryId, attempt: 1 })]);
    expect((await auditRows(created.id)).at(-1)?.details).toMatchObject({ resumed_deliveries: 1 });
  });

  it('DELETE answers 204, then the webhook is gone, and the deletion is audited', async () => {
    const created = await createWebhook({ url: 'https://example.com/d', event_types: ['a'] });
    const res = await svc.call('DELETE', `/webhooks/${created.id}`, {
      token: acme,
      headers: { 'x-request-id': 'req-del' },
    });
    expect(res.status).toBe(204);
    expect((await svc.call('GET', `/webhooks/${created.id}`, { token: acme })).status).toBe(404);
    expect((await svc.call('DELETE', `/webhooks/${created.id}`, { token: acme })).status).toBe(404);
    expect((await auditRows(created.id)).map((r) => r.action)).toEqual([
      'webhook.created',
      'webhook.deleted',
    ]);
  });
});

describe('POST /webhooks/:id/rotate-secret', () => {
  it('moves the secret to previous_secret for 24 h and answers with a new one', async () => {
    const created = await createWebhook({ url: 'https://example.com/r', event_types: ['a'] });
    const res = await svc.call('POST', `/webhooks/${created.id}/rotate-secret`, { token: acme });
    expect(res.status).toBe(200);
    expectSchema(webhookWithSecretSchema, res.body);
    expect(res.body.secret).toMatch(/^whsec_/);
    expect(res.body.secret).not.toBe(created.secret);
    const expires = Date.parse(res.body.previous_secret_expires_at);
    expect(Math.abs(expires - (Date.now() + 24 * 3600_000))).toBeLessThan(60_000);

    const row = await db()
      .selectFrom('webhooks')
      .selectAll()
      .where('id', '=', created.id)
      .executeTakeFirstOrThrow();
    expect(openSecrets(testSecretBox(), created.id, row)).toEqual({
      secret: res.body.secret,
      previous_secret: created.secret,
    });

    const shown = await svc.call('GET', `/webhooks/${created.id}`, { token: acme });
    expect(JSON.stringify(shown.body)).not.toContain(created.secret);
    expect(shown.body).not.toHaveProperty('previous_secret');

    const audit = (await auditRows(created.id)).at(-1)!;
    expect(audit.action).toBe('webhook.secret_rotated');
    expect(JSON.stringify(audit)).not.toContain(created.secret);
    expect(JSON.stringify(audit)).not.toContain(res.body.secret);
  });

  it('takes a given secret from the body', async () => {
    const created = await createWebhook({ url: 'https://example.com/r2', event_types: ['a'] });
    const res = await svc.call('POST', `/webhooks/${created.id}/rotate-secret`, {
      token: acme,
      body: { secret: 'whsec_dGhpcyBpcyBhIG5ldyBzZWNyZXQga2V5IQ==' },
    });
    expect(res.body.secret).toBe('whsec_dGhpcyBpcyBhIG5ldyBzZWNyZXQga2V5IQ==');
    const bad = await svc.call('POST', `/webhooks/${created.id}/rotate-secret`, {
      token: acme,
      body: { secret: 'whsec_not base64!' },
    });
    expect(bad.status).toBe(400);
  });
});
