/**
 * kill -9 of the process delivering to a FIFO webhook, mid-stream: a new process goes on in
 * order. At-least-once: the delivery in flight at the kill may arrive again; nothing arrives out
 * of order and nothing is lost.
 */
import { sql } from 'kysely';
import { afterAll, expect, it } from 'vitest';
import { createDatabase } from '../../src/db/database.js';
import { createTestDatabase } from '../helpers/database.js';
import { fifoSeqs, fifoViolations } from '../helpers/fifo.js';
import { createTenant } from '../helpers/fixtures.js';
import { waitFor } from '../helpers/process.js';
import { startReceiver } from '../helpers/receiver.js';
import { TEST_JWT_SECRET } from '../helpers/service.js';
import { killAll, report, size, spawnChaosService, stopProcess } from './support.js';

const EVENTS = size(300, 2000);
const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  await killAll();
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

it(`kill -9 while ${EVENTS} events go to a FIFO endpoint: a new process delivers the rest in order`, async () => {
  const database = await createTestDatabase();
  cleanups.push(() => database.drop());
  const handle = createDatabase(database.url, { max: 4 });
  cleanups.push(() => handle.close());
  const db = handle.db;
  // 20 ms an answer: a request is in flight most of the time.
  const receiver = await startReceiver({ behaviour: { kind: 'status', status: 200, delayMs: 20 } });
  cleanups.push(() => receiver.close());

  const tenantId = await createTenant(db, 'fifo-kill');
  await sql`update quotas set max_events_per_sec = 100000 where tenant_id = ${tenantId}`.execute(db);
  const [webhook] = (
    await sql<{ id: string }>`
      insert into webhooks (id, tenant_id, url, event_types, secret, ordering)
      values (gen_random_uuid(), ${tenantId}, ${receiver.url}, '{*}', 'whsec_dGVzdHNlY3JldA==', 'fifo')
      returning id`.execute(db)
  ).rows;
  // Emitted in one transaction, in order.
  await sql`select hookrelay.emit(${tenantId}, 'order.updated', jsonb_build_object('n', n))
              from generate_series(1, ${EVENTS}::int) n`.execute(db);

  const env = {
    DATABASE_URL: database.url,
    ROLE: 'worker',
    NUM_WORKERS: '10',
    SSRF_ALLOWLIST: '127.0.0.1/32',
    JWT_SECRET: TEST_JWT_SECRET,
    WORKER_STALE_AFTER_MS: '3000',
  };
  const first = spawnChaosService(env);
  const killAfter = Math.floor(EVENTS / 3);
  await waitFor(
    () => (receiver.requests.length >= killAfter ? true : undefined),
    60_000,
    `${killAfter} arrivals`,
  );
  first.child.kill('SIGKILL');
  await first.exited;
  const arrivedAtKill = receiver.requests.length;
  const killedAt = Date.now();
  const replacement = spawnChaosService(env);

  const done = async () => {
    const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from deliveries where webhook_id = ${webhook!.id} and status = 'succeeded'`.execute(
      db,
    );
    return rows[0]!.n === EVENTS ? true : undefined;
  };
  await waitFor(done, 120_000, 'every delivery to succeed');
  const seqs = await fifoSeqs(db, webhook!.id);
  expect(fifoViolations(receiver.requests, seqs, () => true).slice(0, 10)).toEqual([]);
  const distinct = new Set(receiver.requests.map((q) => q.headers['webhook-id'])).size;
  expect(distinct).toBe(EVENTS);
  report('FIFO kill -9', {
    events: EVENTS,
    arrived_before_kill: arrivedAtKill,
    requests: receiver.requests.length,
    repeated: receiver.requests.length - distinct,
    kill_to_done_ms: Date.now() - killedAt,
  });
  // At-least-once: only what was in flight at the kill may repeat.
  expect(receiver.requests.length - distinct).toBeLessThanOrEqual(1);
  await stopProcess(replacement);
}, 240_000);
