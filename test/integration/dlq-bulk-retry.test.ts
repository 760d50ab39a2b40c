/**
 * A bulk retry of 10 000 dead letters to a receiver that is healthy again: every entry is
 * delivered exactly once, while another tenant's fresh events keep being delivered. Figures
 * (drain rate, fresh event-to-delivery latency during the drain) are printed, not asserted;
 * what is asserted is that fresh traffic is not queued behind the bulk work.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { seedDeadLetters, setQuota } from '../helpers/dead-letters.js';
import { waitFor } from '../helpers/process.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { startTestService, type TestService } from '../helpers/service.js';

const COUNT = Number(process.env.DLQ_BULK_COUNT ?? 10_000);
let svc: TestService;
let bulkReceiver: Receiver;
let freshReceiver: Receiver;

beforeAll(async () => {
  svc = await startTestService({ NUM_WORKERS: '10', DATABASE_POOL_SIZE: '20' });
  bulkReceiver = await startReceiver();
  freshReceiver = await startReceiver();
});
afterAll(async () => {
  await bulkReceiver?.close();
  await freshReceiver?.close();
  await svc?.stop();
});

const percentile = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

it(`retries ${COUNT} dead letters in bulk: each delivered once, fresh events of another tenant still prompt`, async () => {
  const db = svc.service.database.db;
  const bulkToken = await svc.token('bulk-tenant');
  const freshToken = await svc.token('fresh-tenant');
  const bulkWebhook = await svc.call('POST', '/webhooks', {
    token: bulkToken,
    body: { url: bulkReceiver.url, event_types: ['*'] },
  });
  await svc.call('POST', '/webhooks', {
    token: freshToken,
    body: { url: freshReceiver.url, event_types: ['*'] },
  });
  await setQuota(db, 'bulk-tenant', { max_dlq_size: 1_000_000 });
  const seeded = await seedDeadLetters(db, {
    tenantId: 'bulk-tenant',
    webhookId: bulkWebhook.body.id,
    count: COUNT,
    deadAt: new Date(Date.now() - 60_000),
  });

  // Fresh traffic from another tenant, one event every 50 ms, for as long as the drain lasts.
  const postedAt = new Map<string, number>();
  let sending = true;
  const fresh = (async () => {
    while (sending) {
      const started = Date.now();
      const res = await svc.call('POST', '/events', {
        token: freshToken,
        body: { type: 'order.created', payload: { at: started } },
      });
      expect(res.status).toBe(202);
      postedAt.set(res.body.delivery_ids[0], started);
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, 50 - (Date.now() - started))));
    }
  })();

  const retryStarted = Date.now();
  const res = await svc.call('POST', '/dlq/retry', { token: bulkToken, body: {} });
  const requeueSeconds = (Date.now() - retryStarted) / 1000;
  expect(res.status).toBe(200);
  expect(res.body).toEqual({ requeued: COUNT, skipped_webhook_disabled: 0 });
  expect((await svc.call('GET', '/dlq', { token: bulkToken })).body.total).toBe(0);

  await waitFor(
    () => (bulkReceiver.requests.length >= COUNT ? true : undefined),
    600_000,
    `${COUNT} deliveries`,
  );
  const drainEnded = bulkReceiver.requests[COUNT - 1]!.at;
  sending = false;
  await fresh;
  await waitFor(
    () => (freshReceiver.requests.length >= postedAt.size ? true : undefined),
    60_000,
    'fresh events',
  );

  // Exactly once: as many requests as entries, one per delivery id, and nothing more arrives.
  const bulkIds = bulkReceiver.requests.map((q) => q.headers['webhook-id'] as string);
  expect(bulkIds).toHaveLength(COUNT);
  expect(new Set(bulkIds)).toEqual(new Set(seeded.deliveryIds));
  await waitFor(async () => {
    const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from deliveries where tenant_id = 'bulk-tenant' and status = 'succeeded'`.execute(
      db,
    );
    return rows[0]!.n === COUNT ? true : undefined;
  });
  const { rows: jobs } = await sql<{
    n: number;
  }>`select count(*)::int as n from graphile_worker._private_jobs`.execute(db);
  expect(jobs[0]!.n).toBe(0);
  expect(bulkReceiver.requests).toHaveLength(COUNT);
  const audit = await svc.call('GET', '/audit-log?action=dlq.bulk_retried&limit=500', { token: bulkToken });
  expect(audit.body.entries.reduce((n: number, e: any) => n + e.details.count, 0)).toBe(COUNT);

  const freshIds = freshReceiver.requests.map((q) => q.headers['webhook-id'] as string);
  expect(freshIds).toHaveLength(postedAt.size);
  expect(new Set(freshIds)).toEqual(new Set(postedAt.keys()));

  // Fresh traffic was not queued behind the bulk work: every fresh event posted in the first
  // half of the drain — when thousands of bulk deliveries were still waiting — arrived before
  // the drain ended. In FIFO order each would have waited for every bulk job queued before it.
  const midDrain = retryStarted + (drainEnded - retryStarted) / 2;
  const during = freshReceiver.requests
    .map((q) => ({ posted: postedAt.get(q.headers['webhook-id'] as string)!, arrived: q.at }))
    .filter((x) => x.posted >= retryStarted && x.posted <= drainEnded);
  const firstHalf = during.filter((x) => x.posted <= midDrain);
  expect(firstHalf.length).toBeGreaterThan(0);
  expect(firstHalf.filter((x) => x.arrived > drainEnded)).toEqual([]);

  const latencies = during.map((x) => x.arrived - x.posted).sort((a, b) => a - b);
  const drainSeconds = (drainEnded - retryStarted) / 1000;
  console.log(
    [
      `bulk retry: ${COUNT} entries requeued in ${requeueSeconds.toFixed(2)} s (${Math.ceil(COUNT / 500)} batches), ` +
        `drained in ${drainSeconds.toFixed(1)} s = ${(COUNT / drainSeconds).toFixed(0)} deliveries/s, each once`,
      `fresh events during the drain: ${during.length}, event-to-delivery p50 ${percentile(latencies, 50)} ms, ` +
        `p99 ${percentile(latencies, 99)} ms, max ${latencies.at(-1)} ms`,
    ].join('\n'),
  );
}, 900_000);
