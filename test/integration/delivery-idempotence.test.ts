/**
 * graphile-worker runs a job at least once. The `deliver` task run twice for the same payload —
 * one after the other, at the same time, or a stalled run finishing after a newer one — makes
 * at most one next-attempt job and at most one DLQ row, and records the attempt once.
 */
import ipaddr from 'ipaddr.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { deliverWebhook, type DeliveryEngineDeps } from '../../src/delivery/deliver-webhook.js';
import { createHttpClient, type HttpClient } from '../../src/delivery/http-client.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { attemptRows, deliveryRow, dlqRows, jobsOf, queueDelivery } from '../helpers/fixtures.js';
import { withTestDatabase } from '../helpers/database.js';
import { waitFor } from '../helpers/process.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';

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

/** The task's dependencies, without a running worker: the test plays graphile-worker. */
function engine(retryScheduleSeconds: number[]): DeliveryEngineDeps {
  return {
    config: { retryScheduleSeconds, deliveryTimeoutMs: 5000 },
    db: db(),
    logger: createLogger('error'),
    metrics: createMetrics({ defaultMetrics: false }),
    httpClient,
    leaseOwner: 'test-worker',
  };
}

describe('a job run twice', () => {
  it('one after the other: one attempt, one next-attempt job', async () => {
    r = await startReceiver({ behaviour: { kind: 'status', status: 500 } });
    const queued = await queueDelivery(db(), { url: r.url });
    const payload = { delivery_id: queued.deliveryId, attempt: 1 };
    const deps = engine([600]);
    expect(await deliverWebhook(deps, payload)).toBe('retry_scheduled');
    expect(await deliverWebhook(deps, payload)).toBe('stale');
    expect(r.requests).toHaveLength(1);
    expect(await attemptRows(db(), queued.deliveryId)).toHaveLength(1);
    const jobs = await jobsOf(db(), queued.deliveryId);
    expect(jobs.map((job) => job.payload.attempt)).toEqual([2]);
    expect(await deliveryRow(db(), queued.deliveryId)).toMatchObject({ status: 'failed', attempt_count: 1 });
  });

  it('one after the other, last attempt: one DLQ row', async () => {
    r = await startReceiver({ behaviour: { kind: 'status', status: 500 } });
    const queued = await queueDelivery(db(), { url: r.url, enqueue: false });
    const payload = { delivery_id: queued.deliveryId, attempt: 1 };
    const deps = engine([]);
    expect(await deliverWebhook(deps, payload)).toBe('dead');
    expect(await deliverWebhook(deps, payload)).toBe('stale');
    expect(await dlqRows(db(), queued.deliveryId)).toHaveLength(1);
    expect(await jobsOf(db(), queued.deliveryId)).toEqual([]);
  });

  it('at the same time: at most one next-attempt job and one recorded attempt', async () => {
    r = await startReceiver({ behaviour: { kind: 'status', status: 503, delayMs: 100 } });
    const queued = await queueDelivery(db(), { url: r.url });
    const payload = { delivery_id: queued.deliveryId, attempt: 1 };
    const deps = engine([600]);
    const outcomes = await Promise.all([deliverWebhook(deps, payload), deliverWebhook(deps, payload)]);
    console.log(`concurrent runs of one job: ${outcomes.join(', ')}; requests made: ${r.requests.length}`);
    expect(outcomes.filter((o) => o === 'retry_scheduled')).toHaveLength(1);
    expect(outcomes.filter((o) => o === 'stale' || o === 'superseded')).toHaveLength(1);
    expect(await attemptRows(db(), queued.deliveryId)).toHaveLength(1);
    expect((await jobsOf(db(), queued.deliveryId)).map((job) => job.payload.attempt)).toEqual([2]);
  });

  it('at the same time, last attempt: one DLQ row', async () => {
    r = await startReceiver({ behaviour: { kind: 'status', status: 503, delayMs: 100 } });
    const queued = await queueDelivery(db(), { url: r.url, enqueue: false });
    const payload = { delivery_id: queued.deliveryId, attempt: 1 };
    const deps = engine([]);
    const outcomes = await Promise.all([deliverWebhook(deps, payload), deliverWebhook(deps, payload)]);
    expect(outcomes.filter((o) => o === 'dead')).toHaveLength(1);
    expect(await dlqRows(db(), queued.deliveryId)).toHaveLength(1);
    expect(await attemptRows(db(), queued.deliveryId)).toHaveLength(1);
  });

  it('a stalled run that finishes after a newer run of the same job writes nothing', async () => {
    r = await startReceiver({
      behaviour: (index) =>
        index === 0 ? { kind: 'status', status: 500, delayMs: 60_000 } : { kind: 'status', status: 200 },
    });
    const queued = await queueDelivery(db(), { url: r.url });
    const payload = { delivery_id: queued.deliveryId, attempt: 1 };
    const deps = engine([600]);
    // The first run claims the attempt and hangs on its request (as a worker that stalled).
    const stalled = deliverWebhook(deps, payload);
    await waitFor(() => (r.requests.length === 1 ? true : undefined), 5000, 'the first request');
    // The job is released and run again elsewhere: the new run reclaims the same attempt and succeeds.
    expect(await deliverWebhook(deps, payload)).toBe('succeeded');
    // The stalled run's request finally ends (its connection is cut); its result is dropped.
    await r.close();
    expect(await stalled).toBe('superseded');
    const row = await deliveryRow(db(), queued.deliveryId);
    expect(row).toMatchObject({ status: 'succeeded', attempt_count: 1, last_status_code: 200 });
    const attempts = await attemptRows(db(), queued.deliveryId);
    expect(attempts.map((a) => a.status_code)).toEqual([200]);
    expect(await jobsOf(db(), queued.deliveryId)).toHaveLength(1); // only the never-run original
  });
});
