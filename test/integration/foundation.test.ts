import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, TEST_JWT_SECRET, type TestService } from '../helpers/service.js';

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService({ NUM_WORKERS: '0' });
});
afterAll(async () => {
  await svc?.stop();
});

function expectErrorShape(body: any, code: string) {
  expect(body).toMatchObject({ error: { code, message: expect.any(String) } });
  expect(JSON.stringify(body)).not.toMatch(/\bat .+\.(ts|js):\d+/); // no stack trace
}

describe('health and metrics', () => {
  it('GET /health answers 200 when the database answers', async () => {
    const res = await svc.call('GET', '/health');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'ok', database: 'ok' });
    expect(res.headers.get('x-request-id')).toBeTruthy();
  });

  it('GET /metrics needs no token and speaks Prometheus text', async () => {
    const res = await svc.call('GET', '/metrics');
    expect(res.status).toBe(200);
    expect(res.body).toContain('webhook_events_ingested_total');
    expect(res.body).toContain('http_request_duration_seconds');
  });
});

describe('authentication', () => {
  const routes: [string, string][] = [
    ['GET', '/webhooks'],
    ['POST', '/webhooks'],
    ['GET', '/webhooks/00000000-0000-0000-0000-000000000000'],
    ['POST', '/events'],
    ['GET', '/dlq'],
    ['GET', '/quotas/acme'],
    ['GET', '/audit-log'],
    ['GET', '/no-such-route'],
  ];

  it.each(routes)('%s %s without a token is a 401 in the error shape', async (method, path) => {
    const res = await svc.call(method, path);
    expect(res.status).toBe(401);
    expectErrorShape(res.body, 'unauthorized');
  });

  it('rejects a token signed with another key', async () => {
    const token = await new SignJWT({ tenant_id: 'acme' })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode('some-other-secret-0123456789'));
    const res = await svc.call('GET', '/webhooks', { token });
    expect(res.status).toBe(401);
    expectErrorShape(res.body, 'unauthorized');
  });

  it('rejects alg: none', async () => {
    const encode = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const token = `${encode({ alg: 'none', typ: 'JWT' })}.${encode({ tenant_id: 'acme', role: 'admin' })}.`;
    const res = await svc.call('GET', '/webhooks', { token });
    expect(res.status).toBe(401);
  });

  it('rejects an expired token', async () => {
    const token = await new SignJWT({ tenant_id: 'acme' })
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(new TextEncoder().encode(TEST_JWT_SECRET));
    const res = await svc.call('GET', '/webhooks', { token });
    expect(res.status).toBe(401);
    expect(res.body.error.message).toMatch(/expired/);
  });

  it('rejects garbage and a token without tenant_id', async () => {
    expect((await svc.call('GET', '/webhooks', { token: 'garbage' })).status).toBe(401);
    const noTenant = await new SignJWT({ role: 'admin' })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(TEST_JWT_SECRET));
    expect((await svc.call('GET', '/webhooks', { token: noTenant })).status).toBe(401);
  });

  it('a valid token on an unknown route gets a 404 in the error shape', async () => {
    const res = await svc.call('GET', '/no-such-route', { token: await svc.token('acme') });
    expect(res.status).toBe(404);
    expectErrorShape(res.body, 'not_found');
  });
});
