/**
 * SIGTERM to a worker process while it delivers. The receiver holds every answer, so at the
 * signal the process has MAX_IN_FLIGHT requests open and no room for more: any request that
 * arrives later was a job taken after the signal. Two endings: the held answers come within
 * SHUTDOWN_TIMEOUT_MS (the attempts finish), or they do not (the attempts are cut short and
 * recorded as interrupted, their next attempt queued at once). Either way a second worker
 * delivers everything; only interrupted attempts arrive twice.
 */
import { sql, type Kysely } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { createDatabase, type Database } from '../../src/db/database.js';
import { createTestDatabase } from '../helpers/database.js';
import { createTenant, createWebhook } from '../helpers/fixtures.js';
import { waitFor } from '../helpers/process.js';
import { TEST_JWT_SECRET } from '../helpers/service.js';
import {
  arrivals,
  killAll,
  queueMany,
  leasedDeliveries,
  queueState,
  report,
  size,
  spawnChaosService,
  startGatedReceiver,
  statusCounts,
  type GatedReceiver,
  tally,
} from './support.js';

const TENANTS = 4;
const NUM_WORKERS = 4;
/** Requests the process keeps open at once. */
const MAX_IN_FLIGHT = 4;
const PER_TENANT = size(10, 50);

const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  await killAll();
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

async function setUp(): Promise<{
  db: Kysely<Database>;
  url: string;
  receiver: GatedReceiver;
  ids: string[];
}> {
  const database = await createTestDatabase();
  cleanups.push(() => database.drop());
  const handle = createDatabase(database.url, { max: 4 });
  cleanups.push(() => handle.close());
  const receiver = await startGatedReceiver();
  cleanups.push(() => receiver.close());
  const ids: string[] = [];
  for (let t = 0; t < TENANTS; t++) {
    const tenantId = await createTenant(handle.db, `sigterm-${t}`);
    const webhook = await createWebhook(handle.db, { tenantId, url: `${receiver.url}/hook` });
    ids.push(...(await queueMany(handle.db, tenantId, webhook.id, PER_TENANT)));
  }
  return { db: handle.db, url: database.url, receiver, ids };
}

const workerEnv = (url: string, shutdownTimeoutMs: number) => ({
  DATABASE_URL: url,
  ROLE: 'worker',
  NUM_WORKERS: String(NUM_WORKERS),
  MAX_IN_FLIGHT: String(MAX_IN_FLIGHT),
  SSRF_ALLOWLIST: '127.0.0.1/32',
  JWT_SECRET: TEST_JWT_SECRET,
  SHUTDOWN_TIMEOUT_MS: String(shutdownTimeoutMs),
  LOG_LEVEL: 'info',
});

describe('SIGTERM during delivery', () => {
  it('answers within the deadline: the attempts in flight finish, no job is taken after the signal, nothing is lost', async () => {
    const { db, url, receiver, ids } = await setUp();
    const first = spawnChaosService(workerEnv(url, 20_000));
    await waitFor(() => (receiver.held() === MAX_IN_FLIGHT ? true : undefined), 60_000, 'the process full');
    const inFlightAtSignal = receiver.requests.length;

    first.child.kill('SIGTERM');
    await first.logged('stopping');
    receiver.release();
    const exit = await first.exited;
    const arrivedBeforeExit = receiver.requests.length;
    const unfinished = await leasedDeliveries(db);
    const queue = await queueState(db);
    const counts = await statusCounts(db);

    const second = spawnChaosService(workerEnv(url, 20_000));
    await waitFor(
      () => (tally(ids, arrivals(receiver.requests)).lost.length === 0 ? true : undefined),
      60_000,
      'every delivery after the restart',
    );
    const result = tally(ids, arrivals(receiver.requests));
    report('SIGTERM, answers in time', {
      deliveries: ids.length,
      in_flight_at_signal: inFlightAtSignal,
      requests_after_signal: arrivedBeforeExit - inFlightAtSignal,
      exit_code: String(exit.code),
      succeeded_by_first: counts.succeeded ?? 0,
      unfinished_after_exit: unfinished.length,
      locked_jobs_after_exit: queue.locked,
      lost: result.lost.length,
      duplicates: result.extraArrivals,
    });

    expect(inFlightAtSignal).toBe(MAX_IN_FLIGHT);
    expect(arrivedBeforeExit, 'a job was taken after SIGTERM').toBe(inFlightAtSignal);
    expect(exit.code).toBe(0);
    expect(counts.succeeded).toBe(MAX_IN_FLIGHT);
    expect(unfinished).toEqual([]);
    expect(queue).toMatchObject({ deliveries: ids.length - MAX_IN_FLIGHT, locked: 0 });
    expect(result.lost).toEqual([]);
    expect(result.extraArrivals).toBe(0);
    expect(result.unknown).toEqual([]);
    second.child.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);
  }, 180_000);

  it('answers later than the deadline: the attempts are recorded as interrupted and sent again, nothing is lost', async () => {
    const { db, url, receiver, ids } = await setUp();
    const shutdownTimeoutMs = 1500;
    const first = spawnChaosService(workerEnv(url, shutdownTimeoutMs));
    await waitFor(() => (receiver.held() === MAX_IN_FLIGHT ? true : undefined), 60_000, 'the process full');
    const inFlightAtSignal = new Set(receiver.requests.map((r) => String(r.headers['webhook-id'])));

    const signalledAt = Date.now();
    first.child.kill('SIGTERM');
    const exit = await first.exited;
    const stopMs = Date.now() - signalledAt;
    const arrivedBeforeExit = receiver.requests.length;
    const unfinished = await leasedDeliveries(db);
    const queue = await queueState(db);
    const interrupted = await sql<{ id: string }>`
      select id from deliveries
       where status = 'failed' and attempt_count = 1 and last_error = 'interrupted by shutdown'
    `
      .execute(db)
      .then((q) => q.rows.map((row) => row.id));
    const handedBack = first.count(
      'delivery attempt interrupted by shutdown; its next attempt is queued now',
    );

    receiver.release();
    const second = spawnChaosService(workerEnv(url, 20_000));
    await waitFor(
      () => (tally(ids, arrivals(receiver.requests)).lost.length === 0 ? true : undefined),
      60_000,
      'every delivery after the restart',
    );
    await waitFor(
      async () => ((await statusCounts(db)).succeeded === ids.length ? true : undefined),
      30_000,
      'every delivery row to say succeeded',
    );
    const result = tally(ids, arrivals(receiver.requests));
    report('SIGTERM, answers too late', {
      deliveries: ids.length,
      shutdown_timeout_ms: shutdownTimeoutMs,
      in_flight_at_signal: inFlightAtSignal.size,
      requests_after_signal: arrivedBeforeExit - inFlightAtSignal.size,
      handed_back: handedBack,
      stop_ms: stopMs,
      exit_code: String(exit.code),
      unfinished_after_exit: unfinished.length,
      locked_jobs_after_exit: queue.locked,
      lost: result.lost.length,
      duplicates: result.extraArrivals,
    });

    expect(arrivedBeforeExit, 'a job was taken after SIGTERM').toBe(inFlightAtSignal.size);
    expect(exit.code).toBe(0);
    expect(handedBack).toBe(MAX_IN_FLIGHT);
    // Cut short: recorded as interrupted (the receiver had the request), no lease left, and
    // every delivery queued again, unlocked.
    expect(new Set(interrupted)).toEqual(inFlightAtSignal);
    expect(unfinished).toEqual([]);
    expect(queue).toMatchObject({ deliveries: ids.length, locked: 0 });
    expect(result.lost).toEqual([]);
    expect(result.unknown).toEqual([]);
    expect(new Set(result.duplicated)).toEqual(inFlightAtSignal);
    expect(result.extraArrivals).toBe(inFlightAtSignal.size);
    second.child.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);
  }, 180_000);
});
