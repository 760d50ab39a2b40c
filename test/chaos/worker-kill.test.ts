/**
 * kill -9 of a worker process in the middle of a large batch of deliveries, then a new worker
 * process: the heartbeat sweeper releases the dead worker's jobs, every delivery arrives, and
 * only attempts that were in flight at the kill arrive twice (with the same webhook-id).
 */
import { sql } from 'kysely';
import { afterAll, expect, it } from 'vitest';
import { createDatabase } from '../../src/db/database.js';
import { createTestDatabase } from '../helpers/database.js';
import { createTenant, createWebhook } from '../helpers/fixtures.js';
import { waitFor } from '../helpers/process.js';
import { startReceiver } from '../helpers/receiver.js';
import { TEST_JWT_SECRET } from '../helpers/service.js';
import {
  arrivals,
  killAll,
  queueMany,
  queueState,
  report,
  size,
  spawnChaosService,
  statusCounts,
  stopProcess,
  tally,
} from './support.js';

const DELIVERIES = size(1000, 5000);
const NUM_WORKERS = 10;
const STALE_AFTER_MS = 3000;
/** Requests the worker keeps open at once. */
const MAX_IN_FLIGHT = 100;

const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  await killAll();
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

it(`kill -9 of a worker in the middle of ${DELIVERIES} deliveries: a new worker delivers all of them, duplicates only of what was in flight`, async () => {
  const database = await createTestDatabase();
  cleanups.push(() => database.drop());
  const handle = createDatabase(database.url, { max: 4 });
  cleanups.push(() => handle.close());
  const db = handle.db;
  // An answer time of 200 ms with at most MAX_IN_FLIGHT open keeps attempts in flight at any moment.
  const receiver = await startReceiver({ behaviour: { kind: 'status', status: 200, delayMs: 200 } });
  cleanups.push(() => receiver.close());

  const tenantId = await createTenant(db, 'kill-nine');
  const webhook = await createWebhook(db, { tenantId, url: `${receiver.url}/hook` });
  const ids = await queueMany(db, tenantId, webhook.id, DELIVERIES);

  const env = {
    DATABASE_URL: database.url,
    ROLE: 'worker',
    NUM_WORKERS: String(NUM_WORKERS),
    MAX_IN_FLIGHT: String(MAX_IN_FLIGHT),
    SSRF_ALLOWLIST: '127.0.0.1/32',
    JWT_SECRET: TEST_JWT_SECRET,
    WORKER_STALE_AFTER_MS: String(STALE_AFTER_MS),
  };
  // The killed worker batches jobs in graphile-worker's local queue (locked in its pool's name,
  // not yet running): those must come back too.
  const first = spawnChaosService({ ...env, WORKER_LOCAL_QUEUE_SIZE: String(NUM_WORKERS) });
  const killAfter = Math.floor(DELIVERIES * 0.3);
  await waitFor(
    () => (receiver.requests.length >= killAfter ? true : undefined),
    120_000,
    `${killAfter} deliveries before the kill`,
  );
  const receiverInFlightAtKill = receiver.inFlight();
  first.child.kill('SIGKILL');
  const killedAt = Date.now();
  await first.exited;
  const arrivedAtKill = new Set(arrivals(receiver.requests).keys());

  // What the dead process held: leased deliveries never recorded (in flight), and locked jobs.
  const { rows: leased } = await sql<{ id: string }>`select delivery_id as id from delivery_leases`.execute(
    db,
  );
  const inFlightAtKill = new Set(leased.map((row) => row.id));
  const { rows: locked } = await sql<{ delivery_id: string }>`
    select e.entry->>'id' as delivery_id
      from graphile_worker._private_jobs j
      cross join lateral json_array_elements(j.payload->'deliveries') as e(entry)
     where j.locked_by is not null
  `.execute(db);
  const lockedAtKill = new Set(locked.map((row) => row.delivery_id));

  const second = spawnChaosService(env);
  const restartedAt = Date.now();
  const allArrivedAt = await waitFor(
    () => (tally(ids, arrivals(receiver.requests)).lost.length === 0 ? Date.now() : undefined),
    60_000,
    'every delivery to arrive after the restart',
  ).catch(() => undefined);
  const released = await second.logged('released jobs of stale workers').catch(() => undefined);

  const result = tally(ids, arrivals(receiver.requests));
  // When the dead worker's own deliveries (claimed or locked at the kill) had all arrived after the restart.
  const heldByDead = new Set([...inFlightAtKill, ...lockedAtKill]);
  const heldRecoveredAt = Math.max(
    ...receiver.requests.filter((r) => heldByDead.has(String(r.headers['webhook-id']))).map((r) => r.at),
  );
  report('kill -9 worker', {
    deliveries: DELIVERIES,
    arrived_before_kill: arrivedAtKill.size,
    in_flight_at_kill: inFlightAtKill.size,
    receiver_in_flight_at_kill: receiverInFlightAtKill,
    locked_jobs_at_kill: lockedAtKill.size,
    lost: result.lost.length,
    duplicates: result.extraArrivals,
    dead_workers_deliveries_recovered_ms: heldRecoveredAt - restartedAt,
    all_arrived_after_restart_ms: allArrivedAt === undefined ? 'never' : allArrivedAt - restartedAt,
    kill_to_all_arrived_ms: allArrivedAt === undefined ? 'never' : allArrivedAt - killedAt,
    stale_after_ms: STALE_AFTER_MS,
  });

  expect(released, second.tail()).toBeDefined();
  expect(result.lost).toEqual([]);
  expect(allArrivedAt! - restartedAt).toBeLessThan(60_000);
  expect(result.unknown).toEqual([]);
  expect(result.extraArrivals).toBeLessThanOrEqual(inFlightAtKill.size);
  // A duplicate is an attempt that was in flight when the process died, sent again under the
  // same webhook-id (the receiver counts by that header).
  for (const id of result.duplicated) expect(inFlightAtKill.has(id)).toBe(true);
  expect([...arrivals(receiver.requests).values()].every((n) => n <= 2)).toBe(true);

  await waitFor(
    async () => ((await statusCounts(db)).succeeded === DELIVERIES ? true : undefined),
    30_000,
    'every delivery row to say succeeded',
  );
  await stopProcess(second);
  expect((await second.exited).code).toBe(0);
  // Nothing left behind in the queue: not even a job superseded while the dead worker held it.
  expect(await queueState(db)).toEqual({ jobs: 0, locked: 0, deliveries: 0 });
  const leases = await sql<{ n: number }>`select count(*)::int as n from delivery_leases`.execute(db);
  expect(leases.rows[0]!.n).toBe(0);
}, 300_000);
