/**
 * POST /tenants/:tenant_id/revoke-tokens across two real processes on one database: the tenant's
 * tokens issued before it get 401 on every route of both within 5 s (even a token each process
 * had verified and remembered), tokens minted afterwards work, other tenants are untouched, and
 * the revocation is audited. Also: JWT_SECRETS=new,old accepts both keys during a rotation.
 */
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken } from '../../src/http/auth.js';
import { apiRoutes } from '../chaos/support.js';
import { createLogger } from '../../src/observability/logger.js';
import { startTokenRevocations } from '../../src/tenancy/token-revocations.js';
import { createTestDatabase, withTestDatabase, type TestDatabase } from '../helpers/database.js';
import { freePort, spawnService, stopService, waitFor, type ServiceProcess } from '../helpers/process.js';
import { TEST_JWT_SECRET, TEST_SECRETS_KEY } from '../helpers/service.js';

const OLD_JWT_SECRET = 'old-jwt-secret-0123456789abcdef';
let database: TestDatabase;
const procs: ServiceProcess[] = [];
let bases: string[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  for (const role of ['all', 'api']) {
    procs.push(
      spawnService({
        DATABASE_URL: database.url,
        ROLE: role,
        NUM_WORKERS: '1',
        // Both keys verify; the first signs (a JWT_SECRET rotation's overlap).
        JWT_SECRETS: `${TEST_JWT_SECRET},${OLD_JWT_SECRET}`,
        SECRETS_KEY: TEST_SECRETS_KEY,
      }),
    );
  }
  const ports = await Promise.all(procs.map((p) => p.listening));
  bases = ports.map((port) => `http://127.0.0.1:${port}`);
}, 60_000);
afterAll(async () => {
  await Promise.all(procs.map((p) => stopService(p)));
  await database?.drop();
});

async function call(base: string, method: string, path: string, token?: string, body?: unknown) {
  const res = await fetch(base + path, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as any) : undefined };
}

const tenantToken = (tenantId: string, secret = TEST_JWT_SECRET) => signToken(secret, { tenantId });
const nextSecond = () => new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 20));

describe("revoking a tenant's tokens", () => {
  it('401 in every process within 5 s, on every route; tokens minted afterwards work', async () => {
    const admin = await signToken(TEST_JWT_SECRET, { tenantId: 'ops', role: 'admin' });
    const leaked = await tenantToken('leaky');
    const signedWithOldKey = await tenantToken('leaky', OLD_JWT_SECRET);
    const noIat = await new SignJWT({ tenant_id: 'leaky' })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(TEST_JWT_SECRET));
    const bystander = await tenantToken('bystander');
    // Each process verifies, and remembers, the leaked token first.
    for (const base of bases) {
      for (const token of [leaked, signedWithOldKey, noIat, bystander]) {
        expect((await call(base, 'GET', '/webhooks', token)).status).toBe(200);
      }
    }

    const refused = await call(bases[0]!, 'POST', '/tenants/leaky/revoke-tokens', leaked);
    expect(refused.status).toBe(403);
    const revokedAt = Date.now();
    const revoked = await call(bases[0]!, 'POST', '/tenants/leaky/revoke-tokens', admin);
    expect(revoked.status).toBe(200);
    expect(revoked.body).toEqual({ tenant_id: 'leaky', tokens_valid_after: expect.any(String) });

    const timings = await Promise.all(
      bases.map(async (base) => {
        for (;;) {
          const { status } = await call(base, 'GET', '/webhooks', leaked);
          if (status === 401) return Date.now() - revokedAt;
          if (Date.now() - revokedAt > 5000) return Infinity;
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      }),
    );
    process.stdout.write(
      `revocation took effect after: process 1 (ROLE=all, the one revoking) ${timings[0]} ms, process 2 (ROLE=api) ${timings[1]} ms\n`,
    );
    for (const ms of timings) expect(ms).toBeLessThan(5000);

    for (const base of bases) {
      for (const token of [leaked, signedWithOldKey, noIat]) {
        const res = await call(base, 'GET', '/webhooks', token);
        expect(res).toEqual({
          status: 401,
          body: { error: { code: 'unauthorized', message: 'The token has been revoked.' } },
        });
      }
      expect((await call(base, 'GET', '/webhooks', bystander)).status).toBe(200);
    }
    // Every route of the API, on the process that did not revoke.
    const notRefused: string[] = [];
    for (const [method, template] of apiRoutes()) {
      const path = template.replace(/\{tenant_id\}/g, 'leaky').replace(/\{[^}]+\}/g, crypto.randomUUID());
      const body = method === 'GET' || method === 'DELETE' ? undefined : {};
      const res = await call(bases[1]!, method, path, leaked, body);
      if (res.status !== 401) notRefused.push(`${method} ${template} → ${res.status}`);
    }
    expect(notRefused).toEqual([]);

    // Tokens issued from the next second on work everywhere.
    await nextSecond();
    const fresh = await tenantToken('leaky');
    for (const base of bases) expect((await call(base, 'GET', '/webhooks', fresh)).status).toBe(200);

    const audit = await call(
      bases[1]!,
      'GET',
      '/audit-log?tenant_id=leaky&action=tenant.tokens_revoked',
      admin,
    );
    expect(audit.body.entries).toEqual([
      expect.objectContaining({
        actor: 'ops:admin',
        action: 'tenant.tokens_revoked',
        object_type: 'tenant',
        object_id: 'leaky',
        details: { tokens_valid_after: revoked.body.tokens_valid_after },
      }),
    ]);
  });

  it('a process started after the revocation refuses the old tokens from its first request', async () => {
    const late = spawnService({
      DATABASE_URL: database.url,
      ROLE: 'api',
      JWT_SECRET: TEST_JWT_SECRET,
      SECRETS_KEY: TEST_SECRETS_KEY,
    });
    try {
      const base = `http://127.0.0.1:${await late.listening}`;
      const old = await new SignJWT({ tenant_id: 'leaky' })
        .setProtectedHeader({ alg: 'HS256' })
        .setIssuedAt(Math.floor(Date.now() / 1000) - 3600)
        .sign(new TextEncoder().encode(TEST_JWT_SECRET));
      expect((await call(base, 'GET', '/webhooks', old)).status).toBe(401);
    } finally {
      await stopService(late);
    }
  }, 60_000);

  it('without NOTIFY (its listening connection refused), the re-read every second still applies a revocation', async () => {
    const { handle, cleanup } = await withTestDatabase();
    const revocations = await startTokenRevocations({
      db: handle.db,
      // Nothing listens there: LISTEN never starts, only the re-read works.
      databaseUrl: `postgres://nobody@127.0.0.1:${await freePort()}/none`,
      logger: createLogger('error'),
    });
    try {
      await handle.pool.query(`insert into tenants (id, tokens_valid_after) values ('quiet', now())`);
      const seen = await waitFor(() => revocations.validAfter('quiet'), 5000, 'the re-read');
      expect(seen).toBeGreaterThan(Date.now() - 5000);
    } finally {
      await revocations.stop();
      await cleanup();
    }
  });
});
