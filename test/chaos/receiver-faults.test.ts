/**
 * Receiver faults mixed at random across many deliveries, through one worker process: errors
 * that pass, errors that last, 429/503 with Retry-After, timeouts, resets, slow drips, huge
 * bodies, redirects, refused connections and 410 Gone. Every delivery must end delivered,
 * dead-lettered or paused, with its reason on record, and the process's memory must stay
 * bounded however many huge answers it was offered.
 */
import { sql } from 'kysely';
import { afterAll, expect, it } from 'vitest';
import { createDatabase } from '../../src/db/database.js';
import { GONE_REASON } from '../../src/webhooks/webhook-state.js';
import { createTestDatabase } from '../helpers/database.js';
import { setQuota } from '../helpers/dead-letters.js';
import { createTenant, createWebhook } from '../helpers/fixtures.js';
import { freePort, waitFor } from '../helpers/process.js';
import { startReceiver, type Behaviour } from '../helpers/receiver.js';
import { TEST_JWT_SECRET } from '../helpers/service.js';
import {
  killAll,
  peakRssMiB,
  queueMany,
  queueState,
  report,
  size,
  spawnChaosService,
  startConnectionCounter,
  stopProcess,
} from './support.js';

const DELIVERIES = size(300, 1000);
const RETRY_SCHEDULE = [0.1, 0.2, 0.3];
const MAX_ATTEMPTS = RETRY_SCHEDULE.length + 1;
const HUGE_BYTES = 32 * 1024 * 1024;
/**
 * The bound on the worker's peak RSS growth while it works through the faults: less than two
 * of the huge bodies it is offered (it reads 4 KiB of each), and about the size of its own
 * start-up footprint. A client that buffered whole answers would pass it with the first two.
 */
const RSS_GROWTH_BOUND_MIB = 64;

interface Kind {
  name: string;
  weight: number;
  timeoutMs?: number;
  /** The answer to attempt `attempt` (1-based) of a delivery of this kind. */
  answer(attempt: number): Behaviour;
  end: 'succeeded' | 'dead' | 'paused';
  /** The recorded reason: the delivery's last error (dead), or the webhook's disabled reason (paused). */
  reason?: RegExp;
}

const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  await killAll();
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

/** A small seeded generator (mulberry32), so that a failing mix can be run again with CHAOS_SEED. */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

it(`${DELIVERIES} deliveries to receivers failing in every way: each ends delivered, dead-lettered or paused with its reason, memory bounded`, async () => {
  const seed = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const random = seeded(seed);
  const database = await createTestDatabase();
  cleanups.push(() => database.drop());
  const handle = createDatabase(database.url, { max: 4 });
  cleanups.push(() => handle.close());
  const db = handle.db;

  const redirectTarget = await startConnectionCounter('127.0.0.1');
  cleanups.push(() => redirectTarget.close());
  const refusedPort = await freePort();

  const kinds: Kind[] = [
    { name: 'ok', weight: 3, answer: () => ({ kind: 'status', status: 200 }), end: 'succeeded' },
    {
      name: 'flaky-500',
      weight: 2,
      answer: (n) => (n < 3 ? { kind: 'status', status: 500 } : { kind: 'status', status: 204 }),
      end: 'succeeded',
    },
    {
      name: 'always-500',
      weight: 1,
      answer: () => ({ kind: 'status', status: 500, body: 'oops' }),
      end: 'dead',
      reason: /^HTTP 500: Internal Server Error$/,
    },
    {
      name: '429-retry-after',
      weight: 1,
      answer: (n) =>
        n === 1
          ? { kind: 'status', status: 429, headers: { 'retry-after': '1' } }
          : { kind: 'status', status: 200 },
      end: 'succeeded',
    },
    {
      name: '503-retry-after',
      weight: 1,
      answer: (n) =>
        n === 1
          ? { kind: 'status', status: 503, headers: { 'retry-after': '1' } }
          : { kind: 'status', status: 200 },
      end: 'succeeded',
    },
    {
      name: 'timeout',
      weight: 1,
      timeoutMs: 300,
      answer: () => ({ kind: 'hold-open' }),
      end: 'dead',
      reason: /^timeout after 300 ms$/,
    },
    {
      name: 'reset',
      weight: 1,
      answer: () => ({ kind: 'reset-mid-response' }),
      end: 'dead',
      reason: /^connection reset$/,
    },
    {
      name: 'slow-drip',
      weight: 1,
      timeoutMs: 500,
      answer: () => ({ kind: 'drip', intervalMs: 100 }),
      end: 'dead',
      reason: /^timeout after 500 ms$/,
    },
    {
      name: 'slow-drip-body',
      weight: 1,
      timeoutMs: 500,
      answer: () => ({ kind: 'drip-body', intervalMs: 100 }),
      end: 'dead',
      reason: /^timeout after 500 ms$/,
    },
    {
      name: 'huge-200',
      weight: 1,
      answer: () => ({ kind: 'huge-body', status: 200, bytes: HUGE_BYTES }),
      end: 'succeeded',
    },
    {
      name: 'huge-500',
      weight: 1,
      answer: () => ({ kind: 'huge-body', status: 500, bytes: HUGE_BYTES }),
      end: 'dead',
      reason: /^HTTP 500: Internal Server Error$/,
    },
    {
      name: 'redirect',
      weight: 1,
      answer: (n) => ({
        kind: 'redirect',
        status: [301, 302, 303, 307, 308][n % 5]!,
        location: `http://127.0.0.1:${redirectTarget.port}/elsewhere`,
      }),
      end: 'dead',
      reason: /^redirect \(HTTP 30[12378]\) to http:\/\/127\.0\.0\.1:\d+\/elsewhere not followed$/,
    },
    {
      name: 'refused',
      weight: 1,
      answer: () => ({ kind: 'status', status: 200 }),
      end: 'dead',
      reason: /^connection refused$/,
    },
    {
      name: 'gone-410',
      weight: 1,
      answer: () => ({ kind: 'status', status: 410 }),
      end: 'paused',
      reason: new RegExp(`^${GONE_REASON}$`),
    },
  ];

  const attemptsSeen = new Map<string, number>();
  const receiver = await startReceiver({
    behaviour: (_index, request) => {
      const id = String(request.headers['webhook-id']);
      const attempt = (attemptsSeen.get(id) ?? 0) + 1;
      attemptsSeen.set(id, attempt);
      const kind = kinds.find((k) => request.path === `/${k.name}`);
      return kind ? kind.answer(attempt) : { kind: 'status', status: 404 };
    },
  });
  cleanups.push(() => receiver.close());

  // A tenant and a webhook per kind; each delivery draws its kind at random by weight.
  const totalWeight = kinds.reduce((sum, k) => sum + k.weight, 0);
  const counts = new Map<Kind, number>(kinds.map((k) => [k, 0]));
  for (let i = 0; i < DELIVERIES; i++) {
    let pick = random() * totalWeight;
    const kind = kinds.find((k) => (pick -= k.weight) < 0) ?? kinds[0]!;
    counts.set(kind, counts.get(kind)! + 1);
  }
  const kindOfDelivery = new Map<string, Kind>();
  for (const kind of kinds) {
    const tenantId = await createTenant(db, `faults-${kind.name}`);
    // Room for every dead letter: a full DLQ would pause the webhook (another ending, tested elsewhere).
    await setQuota(db, tenantId, { max_dlq_size: 100_000 });
    const url =
      kind.name === 'refused' ? `http://127.0.0.1:${refusedPort}/refused` : `${receiver.url}/${kind.name}`;
    const webhook = await createWebhook(db, { tenantId, url, timeoutMs: kind.timeoutMs });
    const n = counts.get(kind)!;
    if (n === 0) continue;
    for (const id of await queueMany(db, tenantId, webhook.id, n)) kindOfDelivery.set(id, kind);
  }

  const worker = spawnChaosService({
    DATABASE_URL: database.url,
    ROLE: 'worker',
    NUM_WORKERS: '10',
    SSRF_ALLOWLIST: '127.0.0.1/32',
    JWT_SECRET: TEST_JWT_SECRET,
    RETRY_SCHEDULE: RETRY_SCHEDULE.join(','),
    DELIVERY_TIMEOUT_MS: '2000',
  });
  await waitFor(() => (receiver.requests.length > 0 ? true : undefined), 60_000, 'the first request');
  const rssAtStart = await peakRssMiB(worker.pid);
  const started = Date.now();

  const settled = await waitFor(
    async () => {
      const { rows } = await sql<{ n: number }>`
        select count(*)::int as n from deliveries where status in ('pending', 'failed')
      `.execute(db);
      return rows[0]!.n === 0 ? true : undefined;
    },
    240_000,
    'every delivery to end',
  ).catch(() => false);
  const seconds = (Date.now() - started) / 1000;
  const rssPeak = await peakRssMiB(worker.pid);

  const { rows } = await sql<{
    id: string;
    status: string;
    attempt_count: number;
    last_error: string | null;
    succeeded_at: Date | null;
    dlq_error: string | null;
    dlq_attempts: number | null;
    disabled_reason: string | null;
  }>`
    select d.id, d.status, d.attempt_count, d.last_error, d.succeeded_at,
           q.last_error as dlq_error, q.attempts as dlq_attempts, w.disabled_reason
      from deliveries d
      join webhooks w on w.id = d.webhook_id
      left join dlq q on q.delivery_id = d.id
  `.execute(db);
  const ends = new Map<string, number>();
  for (const row of rows) ends.set(row.status, (ends.get(row.status) ?? 0) + 1);
  const hugeOffered = receiver.hugeBodies.length;
  const hugeMostWritten = Math.max(0, ...receiver.hugeBodies.map((h) => h.written));
  report('receiver faults', {
    seed,
    deliveries: DELIVERIES,
    requests: receiver.requests.length,
    seconds: seconds.toFixed(1),
    ends: [...ends].map(([status, n]) => `${status}x${n}`).join(','),
    mix: kinds.map((k) => `${k.name}x${counts.get(k)}`).join(','),
    huge_bodies_offered: hugeOffered,
    huge_most_bytes_written_mib: (hugeMostWritten / 1024 / 1024).toFixed(1),
    rss_at_start_mib: rssAtStart,
    rss_peak_mib: rssPeak,
    rss_growth_bound_mib: RSS_GROWTH_BOUND_MIB,
    redirect_target_connections: redirectTarget.connections(),
  });

  expect(settled, worker.tail()).toBe(true);
  expect(rows).toHaveLength(DELIVERIES);
  for (const row of rows) {
    const kind = kindOfDelivery.get(row.id)!;
    const where = `${kind.name} ${JSON.stringify(row)}`;
    expect(row.status, where).toBe(kind.end);
    if (kind.end === 'succeeded') expect(row.succeeded_at, where).not.toBeNull();
    if (kind.end === 'dead') {
      expect(row.attempt_count, where).toBe(MAX_ATTEMPTS);
      expect(row.dlq_attempts, where).toBe(MAX_ATTEMPTS);
      expect(row.dlq_error, where).toMatch(kind.reason!);
      expect(row.last_error, where).toMatch(kind.reason!);
    }
    if (kind.end === 'paused') expect(row.disabled_reason, where).toMatch(kind.reason!);
  }

  // Retry-After: 1 was honoured: the second attempt came at least a second after the first.
  const { rows: gaps } = await sql<{ gap_ms: number }>`
    select (extract(epoch from (a2.attempted_at - a1.attempted_at)) * 1000)::float8 as gap_ms
      from delivery_attempts a1
      join delivery_attempts a2 on a2.delivery_id = a1.delivery_id and a2.attempt_number = 2
     where a1.attempt_number = 1 and a1.status_code in (429, 503)
  `.execute(db);
  expect(gaps.length).toBe(
    (counts.get(kinds.find((k) => k.name === '429-retry-after')!) ?? 0) +
      (counts.get(kinds.find((k) => k.name === '503-retry-after')!) ?? 0),
  );
  for (const { gap_ms } of gaps) expect(gap_ms).toBeGreaterThanOrEqual(950);

  // Huge answers were cut off after a few KiB, never read whole; redirects were never followed.
  for (const huge of receiver.hugeBodies) {
    await huge.done;
    expect(huge.closedEarly).toBe(true);
  }
  expect(redirectTarget.connections()).toBe(0);
  expect(rssPeak - rssAtStart).toBeLessThan(RSS_GROWTH_BOUND_MIB);

  expect(await queueState(db)).toEqual({ jobs: 0, locked: 0, deliveries: 0 });
  expect(worker.child.exitCode).toBeNull();
  await stopProcess(worker);
  expect((await worker.exited).code).toBe(0);
}, 360_000);
