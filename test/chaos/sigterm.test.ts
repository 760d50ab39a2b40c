/**
 * SIGTERM to a worker process while it delivers. The receiver holds every answer, so at the
 * signal each worker is busy with a request and none is between jobs: any request that
 * arrives later was a job taken after the signal. Two endings: the held answers come within
 * SHUTDOWN_TIMEOUT_MS (the attempts finish), or they do not (the attempts are handed back).
 * Either way a second worker delivers everything; only handed-back attempts arrive twice.
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
  queueState,
  report,
  size,
  spawnChaosService,
  startGatedReceiver,
  statusCounts,
  type GatedReceiver,
  tally,
} from './support.js';

// Four tenants, so that the per-tenant share of a process's slots still lets every worker be busy.
const TENANTS = 4;
const NUM_WORKERS = 4;
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
  SSRF_ALLOWLIST: '127.0.0.1/32',
  JWT_SECRET: TEST_JWT_SECRET,
  SHUTDOWN_TIMEOUT_MS: String(shutdownTimeoutMs),
  LOG_LEVEL: 'info',
});

/** Attempts claimed and never finished: what was in flight when the process went. */
async function unfinishedClaims(db: Kysely<Database>): Promise<string[]> {
  const { rows } = await sql<{ id: string }>`
    select id from deliveries where status = 'pending' and attempt_count > 0
  `.execute(db);
  return rows.map((row) => row.id);
}

describe('SIGTERM during delivery', () => {
  it('answers within the deadline: the attempts in flight finish, no job is taken after the signal, nothing is lost', async () => {
    const { db, url, receiver, ids } = await setUp();
    const first = spawnChaosService(workerEnv(url, 20_000));
    await waitFor(() => (receiver.held() === NUM_WORKERS ? true : undefined), 60_000, 'every worker busy');
    const inFlightAtSignal = receiver.requests.length;

    first.child.kill('SIGTERM');
    await first.logged('stopping');
    receiver.release();
    const exit = await first.exited;
    const arrivedBeforeExit = receiver.requests.length;
    const unfinished = await unfinishedClaims(db);
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

    expect(inFlightAtSignal).toBe(NUM_WORKERS);
    expect(arrivedBeforeExit, 'a job was taken after SIGTERM').toBe(inFlightAtSignal);
    expect(exit.code).toBe(0);
    expect(counts.succeeded).toBe(NUM_WORKERS);
    expect(unfinished).toEqual([]);
    expect(queue).toEqual({ jobs: ids.length - NUM_WORKERS, locked: 0 });
    expect(result.lost).toEqual([]);
    expect(result.extraArrivals).toBe(0);
    expect(result.unknown).toEqual([]);
    second.child.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);
  }, 180_000);

  it('answers later than the deadline: the attempts are handed back and sent again, nothing is lost', async () => {
    const { db, url, receiver, ids } = await setUp();
    const shutdownTimeoutMs = 1500;
    const first = spawnChaosService(workerEnv(url, shutdownTimeoutMs));
    await waitFor(() => (receiver.held() === NUM_WORKERS ? true : undefined), 60_000, 'every worker busy');
    const inFlightAtSignal = new Set(receiver.requests.map((r) => String(r.headers['webhook-id'])));

    const signalledAt = Date.now();
    first.child.kill('SIGTERM');
    const exit = await first.exited;
    const stopMs = Date.now() - signalledAt;
    const arrivedBeforeExit = receiver.requests.length;
    const unfinished = await unfinishedClaims(db);
    const queue = await queueState(db);
    const handedBack = first.count('delivery attempt handed back: stopping');

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
    expect(handedBack).toBe(NUM_WORKERS);
    // Handed back: still claimed (the next run reclaims the same attempt), and queued, unlocked.
    expect(new Set(unfinished)).toEqual(inFlightAtSignal);
    expect(queue).toEqual({ jobs: ids.length, locked: 0 });
    expect(result.lost).toEqual([]);
    expect(result.unknown).toEqual([]);
    expect(new Set(result.duplicated)).toEqual(inFlightAtSignal);
    expect(result.extraArrivals).toBe(inFlightAtSignal.size);
    second.child.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);
  }, 180_000);
});
