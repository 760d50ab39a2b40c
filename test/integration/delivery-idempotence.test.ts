/**
 * graphile-worker runs a job at least once, and two jobs may name the same delivery. The
 * `deliver` task run twice for the same payload — one after the other, at the same time, or a
 * stalled run finishing after a newer one — sends at most once while the first run's lease
 * stands, makes at most one next-attempt job and one DLQ row, and records the attempt once.
 */
import ipaddr from 'ipaddr.js';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createDeliveryEngine, type DeliveryEngine } from '../../src/delivery/deliver-batch.js';
import { createHttpClient, type HttpClient } from '../../src/delivery/http-client.js';
import { sweepStaleWorkers } from '../../src/delivery/worker-heartbeat.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { attemptRows, deliveryRow, dlqRows, jobsOf, queueDelivery } from '../helpers/fixtures.js';
import { withTestDatabase } from '../helpers/database.js';
import { waitFor } from '../helpers/process.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { testSecretBox } from '../helpers/service.js';

let testDb: Awaited<ReturnType<typeof withTestDatabase>>;
let httpClient: HttpClient;
let r: Receiver;
const db = () => testDb.handle.db;

beforeAll(async () => {
  testDb = await withTestDatabase();
  httpClient = createHttpClient({ allowlist: [ipaddr.parseCIDR('127.0.0.1/32')] });
});
afterEach(async () => {
  await r?.close();
});
afterAll(async () => {
  httpClient?.close();
  await testDb?.cleanup();
});

/** A delivery engine without a running worker: the test plays graphile-worker. */
function engine(retryScheduleSeconds: number[], leaseOwner = 'test-worker'): DeliveryEngine {
  return createDeliveryEngine({
    config: { retryScheduleSeconds, deliveryTimeoutMs: 5000, maxInFlight: 100 },
    db: db(),
    logger: createLogger('error'),
    metrics: createMetrics({ defaultMetrics: false }),
    httpClient,
    secrets: testSecretBox(),
    leaseOwner,
  });
}

/** Runs the job's payload and waits until what it sent is recorded. */
async function runJob(deliveryEngine: DeliveryEngine, payload: unknown) {
  const outcome = await deliveryEngine.deliverBatch(payload);
  await deliveryEngine.idle();
  return outcome;
}

const jobPayload = (tenantId: string, deliveryId: string) => ({
  tenant_id: tenantId,
  deliveries: [{ id: deliveryId, attempt: 1 }],
});

describe('a job run twice', () => {
  it('one after the other: one attempt, one next-attempt job', async () => {
    r = await startReceiver({ behaviour: { kind: 'status', status: 500 } });
    const queued = await queueDelivery(db(), { url: r.url });
    const payload = jobPayload(queued.tenantId, queued.deliveryId);
    const deps = engine([600]);
    expect(await runJob(deps, payload)).toEqual({ sent: 1, deferred: 0, requeued: 0, skipped: 0 });
    expect(await runJob(deps, payload)).toEqual({ sent: 0, deferred: 0, requeued: 0, skipped: 1 });
    expect(r.requests).toHaveLength(1);
    expect(await attemptRows(db(), queued.deliveryId)).toHaveLength(1);
    // Next-attempt jobs (the original job stays: graphile-worker, which would remove it, is not running).
    const jobs = await jobsOf(db(), queued.deliveryId);
    expect(jobs.map((job) => job.payload.attempt).filter((n) => n > 1)).toEqual([2]);
    expect(await deliveryRow(db(), queued.deliveryId)).toMatchObject({ status: 'failed', attempt_count: 1 });
  });

  it('one after the other, last attempt: one DLQ row', async () => {
    r = await startReceiver({ behaviour: { kind: 'status', status: 500 } });
    const queued = await queueDelivery(db(), { url: r.url, enqueue: false });
    const payload = jobPayload(queued.tenantId, queued.deliveryId);
    const deps = engine([]);
    expect(await runJob(deps, payload)).toEqual({ sent: 1, deferred: 0, requeued: 0, skipped: 0 });
    expect(await runJob(deps, payload)).toEqual({ sent: 0, deferred: 0, requeued: 0, skipped: 1 });
    expect(await deliveryRow(db(), queued.deliveryId)).toMatchObject({ status: 'dead', attempt_count: 1 });
    expect(await dlqRows(db(), queued.deliveryId)).toHaveLength(1);
    expect(await jobsOf(db(), queued.deliveryId)).toEqual([]);
  });

  it('at the same time: at most one next-attempt job and one recorded attempt', async () => {
    r = await startReceiver({ behaviour: { kind: 'status', status: 503, delayMs: 100 } });
    const queued = await queueDelivery(db(), { url: r.url });
    const payload = jobPayload(queued.tenantId, queued.deliveryId);
    const deps = engine([600]);
    const outcomes = await Promise.all([runJob(deps, payload), runJob(deps, payload)]);
    // The first to take the lease sends; the other finds it held, or the attempt already made.
    expect(outcomes.map((o) => o.sent).sort()).toEqual([0, 1]);
    expect(outcomes.map((o) => o.deferred + o.requeued)).toEqual([0, 0]);
    expect(r.requests).toHaveLength(1);
    expect(await attemptRows(db(), queued.deliveryId)).toHaveLength(1);
    const jobs = await jobsOf(db(), queued.deliveryId);
    expect(jobs.map((job) => job.payload.attempt).filter((n) => n > 1)).toEqual([2]);
  });

  it('at the same time, last attempt: one DLQ row', async () => {
    r = await startReceiver({ behaviour: { kind: 'status', status: 503, delayMs: 100 } });
    const queued = await queueDelivery(db(), { url: r.url, enqueue: false });
    const payload = jobPayload(queued.tenantId, queued.deliveryId);
    const deps = engine([]);
    const outcomes = await Promise.all([runJob(deps, payload), runJob(deps, payload)]);
    expect(outcomes.map((o) => o.sent).sort()).toEqual([0, 1]);
    expect(await dlqRows(db(), queued.deliveryId)).toHaveLength(1);
    expect(await attemptRows(db(), queued.deliveryId)).toHaveLength(1);
  });

  it('a stalled run that finishes after its lease was swept and the delivery sent again writes nothing', async () => {
    r = await startReceiver({
      behaviour: (index) =>
        index === 0 ? { kind: 'status', status: 500, delayMs: 60_000 } : { kind: 'status', status: 200 },
    });
    const queued = await queueDelivery(db(), { url: r.url });
    const payload = jobPayload(queued.tenantId, queued.deliveryId);
    // The first run takes the lease and hangs on its request (as a worker that stalled).
    const stalledEngine = engine([600], 'stalled-worker');
    expect(await stalledEngine.deliverBatch(payload)).toEqual({
      sent: 1,
      deferred: 0,
      requeued: 0,
      skipped: 0,
    });
    await waitFor(() => (r.requests.length === 1 ? true : undefined), 5000, 'the first request');
    // While its lease stands, the job run elsewhere sends nothing.
    const newer = engine([600], 'newer-worker');
    expect(await runJob(newer, payload)).toEqual({ sent: 0, deferred: 0, requeued: 0, skipped: 1 });
    // Its heartbeat goes stale (it never wrote one): the sweep deletes its lease and queues the delivery again.
    await waitFor(
      async () => ((await sweepStaleWorkers(db(), 1)).includes('stalled-worker') ? true : undefined),
      5000,
      'the stalled worker to be swept',
    );
    const requeued = (await jobsOf(db(), queued.deliveryId)).filter((job) => job.payload.attempt === 1);
    expect(requeued).toHaveLength(2); // the original, never run by graphile-worker here, and the sweep's
    expect(await runJob(newer, payload)).toEqual({ sent: 1, deferred: 0, requeued: 0, skipped: 0 });
    // The stalled run's request finally ends (its connection is cut); its result is dropped.
    await r.close();
    await stalledEngine.idle();
    const row = await deliveryRow(db(), queued.deliveryId);
    expect(row).toMatchObject({ status: 'succeeded', attempt_count: 1, last_status_code: 200 });
    const attempts = await attemptRows(db(), queued.deliveryId);
    expect(attempts.map((a) => a.status_code)).toEqual([200]);
    expect(await sql`select * from delivery_leases`.execute(db()).then((q) => q.rows)).toEqual([]);
  });
});
