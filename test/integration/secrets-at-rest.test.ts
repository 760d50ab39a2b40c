/**
 * Signing secrets at rest: what the API returned never appears in the table; rows written in
 * plain text are encrypted at start-up; a service with another key refuses to start, and a row
 * it cannot decrypt is never signed; `npm run secrets:rotate` moves every row to the ring's
 * first key, and deliveries still verify.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { sql } from 'kysely';
import { Webhook } from 'standardwebhooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { attemptRows, createWebhook, queueDelivery, waitForDeliveryStatus } from '../helpers/fixtures.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { REPO_ROOT, runFile } from '../helpers/process.js';
import { receiverPool } from '../helpers/receiver.js';
import { PSQL_ENV } from '../helpers/runbook.js';
import { startTestService, TEST_SECRETS_KEY, type TestService } from '../helpers/service.js';

const receivers = receiverPool();
const key = () => randomBytes(32).toString('base64');

let database: TestDatabase;
const running: TestService[] = [];
async function start(env: Record<string, string> = {}): Promise<TestService> {
  const svc = await startTestService(env, { database });
  running.push(svc);
  return svc;
}
async function stopAll() {
  for (const svc of running.splice(0)) await svc.stop();
}

beforeAll(async () => {
  database = await createTestDatabase();
});
afterEach(async () => {
  await stopAll();
  await receivers.closeAll();
});
afterAll(async () => {
  await database?.drop();
});

/** `select * from webhooks` through psql, as a dump or a curious operator would see it. */
async function psqlDump(query = 'select * from webhooks'): Promise<string> {
  const result = await runFile('psql', [database.url, '-X', '-c', query], { env: PSQL_ENV, timeout: 30_000 });
  expect(result.stderr).toBe('');
  return result.stdout;
}

describe('secrets at rest', () => {
  it('a dump of webhooks holds no secret the API returned, and no whsec_', async () => {
    const svc = await start();
    const token = await svc.token('dump-tenant');
    const shown: string[] = [];
    const generated = await svc.call('POST', '/webhooks', {
      token,
      body: { url: 'https://example.com/a', event_types: ['*'] },
    });
    shown.push(generated.body.secret);
    const given = await svc.call('POST', '/webhooks', {
      token,
      body: { url: 'https://example.com/b', event_types: ['*'], secret: 'a plain given secret 0123' },
    });
    shown.push(given.body.secret);
    const rotated = await svc.call('POST', `/webhooks/${generated.body.id}/rotate-secret`, { token });
    shown.push(rotated.body.secret);
    const read = await svc.call('GET', `/webhooks/${given.body.id}/secret`, { token });
    expect(read.body).toEqual({ secret: 'a plain given secret 0123' });
    const ed = await svc.call('POST', '/webhooks', {
      token,
      body: { url: 'https://example.com/c', event_types: ['*'], signature_type: 'ed25519' },
    });
    expect(ed.status).toBe(201);

    const dump = await psqlDump();
    for (const secret of shown) expect(dump).not.toContain(secret);
    // Not even a part of one: the base64 key of a whsec_ secret.
    expect(dump).not.toContain(generated.body.secret.slice(6, 30));
    expect(dump).not.toContain('whsec_');
    expect(dump).not.toContain('whsk_');
    expect(dump).toContain('v1:default:');
    // The ciphertext row, for the record.
    process.stdout.write(
      await psqlDump(
        `select id, signature_type, secret_key_id, secret, previous_secret, public_key from webhooks where id in ('${generated.body.id}', '${ed.body.id}') order by signature_type desc`,
      ),
    );
  });

  it('encrypts rows written in plain text at start-up, in place, and they still sign', async () => {
    const svc = await start();
    const receiver = await receivers.start();
    // Written behind the service's back, as before migration 012: plain text, no key id.
    const queued = await queueDelivery(svc.service.database.db, { url: receiver.url, enqueue: false });
    const plain = await createWebhook(svc.service.database.db, {
      tenantId: queued.tenantId,
      url: 'https://example.com/plain',
      enabled: false,
    });
    expect(await psqlDump()).toContain(plain.secret);
    await stopAll();

    const again = await start();
    const dump = await psqlDump();
    expect(dump).not.toContain(plain.secret);
    expect(dump).not.toContain(queued.secret);
    const counts = await psqlDump('select secret_key_id, count(*) from webhooks group by 1 order by 1');
    expect(counts).not.toMatch(/^\s*\|/m); // no row without a key id
    const shown = await again.call('GET', `/webhooks/${plain.id}/secret`, {
      token: await again.token(queued.tenantId),
    });
    expect(shown.body).toEqual({ secret: plain.secret });

    const event = await again.call('POST', '/events', {
      token: await again.token(queued.tenantId),
      body: { type: 'plain.rows', payload: { n: 1 } },
    });
    expect(event.body.delivery_ids).toHaveLength(1);
    await waitForDeliveryStatus(again.service.database.db, event.body.delivery_ids[0], ['succeeded']);
    const request = receiver.requests.at(-1)!;
    expect(
      new Webhook(queued.secret).verify(request.body, request.headers as Record<string, string>),
    ).toBeTruthy();
  });

  it('a service with another SECRETS_KEY refuses to start, naming SECRETS_KEY', async () => {
    await start();
    await stopAll();
    await expect(start({ SECRETS_KEY: key() })).rejects.toThrow(
      /key id "default" do not decrypt: SECRETS_KEYS \(or SECRETS_KEY\)/,
    );
    await expect(start({ SECRETS_KEY: '', SECRETS_KEYS: `other:${key()}` })).rejects.toThrow(
      /encrypted under key id "default", which SECRETS_KEYS \(or SECRETS_KEY\) does not hold/,
    );
  });

  it('a row it cannot decrypt is never signed: the attempt fails unsent, with a clear error', async () => {
    const svc = await start();
    const receiver = await receivers.start();
    const db = svc.service.database.db;
    const queued = await queueDelivery(db, { url: receiver.url });
    // Encrypted elsewhere, under a key this process does not have (after its start-up check).
    await sql`update webhooks set secret = ${'v1:elsewhere:' + randomBytes(60).toString('base64')},
                                  secret_key_id = 'elsewhere'
               where id = ${queued.webhookId}`.execute(db);
    const row = await waitForDeliveryStatus(db, queued.deliveryId, ['failed', 'dead']);
    expect(row.last_error).toBe("not sent: the service cannot decrypt this webhook's signing secret");
    expect(receiver.requests).toHaveLength(0);
    expect((await attemptRows(db, queued.deliveryId))[0]).toMatchObject({
      status_code: null,
      duration_ms: 0,
    });
    await sql`delete from webhooks where id = ${queued.webhookId}`.execute(db);
  });

  it('rotation: two keys in the ring, secrets:rotate, every row under the new key, deliveries still verify', async () => {
    const oldKey = TEST_SECRETS_KEY;
    const newKey = key();
    const first = await start();
    const tenant = 'rotating-tenant';
    const token = await first.token(tenant);
    const receiver = await receivers.start();
    const created = await first.call('POST', '/webhooks', {
      token,
      body: { url: receiver.url, event_types: ['*'] },
    });
    const rotated = await first.call('POST', `/webhooks/${created.body.id}/rotate-secret`, { token });
    await stopAll();
    const before = await psqlDump('select secret_key_id, count(*) from webhooks group by 1 order by 1');
    expect(before).toMatch(/default\s+\|\s+\d+/);

    const ring = `2025b:${newKey},default:${oldKey}`;
    const result = await runFile(
      process.execPath,
      ['--import', 'tsx', path.join(REPO_ROOT, 'src/webhooks/rotate-secrets-cli.ts')],
      {
        cwd: REPO_ROOT,
        env: {
          ...process.env,
          NODE_ENV: 'test',
          DATABASE_URL: database.url,
          SECRETS_KEYS: ring,
          SECRETS_KEY: '',
        },
        timeout: 60_000,
      },
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      /^re-encrypted \d+ webhook\(s\) under key id "2025b"; webhooks per key id now: 2025b: \d+\n$/,
    );
    const after = await psqlDump('select secret_key_id, count(*) from webhooks group by 1 order by 1');
    expect(after).not.toContain('default');
    expect(after).toMatch(/2025b\s+\|\s+\d+/);

    // The old key can leave the ring: the new one alone signs, with both secrets of the overlap.
    const svc = await start({ SECRETS_KEY: '', SECRETS_KEYS: `2025b:${newKey}` });
    const event = await svc.call('POST', '/events', { token, body: { type: 'after.rotation', payload: {} } });
    await waitForDeliveryStatus(svc.service.database.db, event.body.delivery_ids[0], ['succeeded']);
    const request = receiver.requests.at(-1)!;
    const headers = request.headers as Record<string, string>;
    expect(headers['webhook-signature']!.split(' ')).toHaveLength(2);
    expect(new Webhook(rotated.body.secret).verify(request.body, headers)).toBeTruthy();
    expect(new Webhook(created.body.secret).verify(request.body, headers)).toBeTruthy();
  });
});
