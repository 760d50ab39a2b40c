/**
 * PostgreSQL goes away and comes back (on the same port) while events are being posted and
 * delivered. An API process and a worker process run against a server of this test's own.
 * During the outage the API answers 503 quickly; afterwards both processes carry on by
 * themselves, and every event that was answered 202 is delivered.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, expect, it } from 'vitest';
import { signToken } from '../../src/http/auth.js';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import { waitFor } from '../helpers/process.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { arrivals, killAll, report, size, spawnChaosService, stopProcess, tally } from './support.js';

const JWT_SECRET = 'chaos-postgres-restart-secret-0123';
const OUTAGE_MS = size(5000, 15_000);
const RATE_PER_SEC = 20;
const NUM_WORKERS = 10;

let server: EmbeddedPostgres | undefined;
let receiver: Receiver | undefined;
let dataDir: string | undefined;

afterAll(async () => {
  await killAll();
  await receiver?.close();
  await server?.stop().catch(() => undefined);
  if (dataDir) await fs.rm(dataDir, { recursive: true, force: true });
});

interface Sent {
  sentAt: number;
  ms: number;
  status: number | 'no answer';
  code?: string;
  deliveryIds: string[];
}

it('a PostgreSQL restart during ingest and delivery: 503s while it is away, then everything answered 202 is delivered', async () => {
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'hookrelay-chaos-pg-'));
  server = await startEmbeddedPostgres({ dataDir });
  const port = server.port;
  // Answers take a while, so that attempts are in flight when the server goes away.
  receiver = await startReceiver({ behaviour: { kind: 'status', status: 200, delayMs: 300 } });

  const common = {
    DATABASE_URL: server.connectionString,
    JWT_SECRET,
    SSRF_ALLOWLIST: '127.0.0.1/32',
    RETRY_SCHEDULE: '0.2,0.5,1,2,4',
    WORKER_STALE_AFTER_MS: '5000',
  };
  const api = spawnChaosService({ ...common, ROLE: 'api', LOG_LEVEL: 'info' });
  const apiUrl = `http://127.0.0.1:${await api.listening}`;
  // Two workers: one fetching a job at a time (the default), one with graphile-worker's local
  // queue (WORKER_LOCAL_QUEUE_SIZE), whose shutdown after a lost connection is the harder case.
  const workers = [
    spawnChaosService({ ...common, ROLE: 'worker', NUM_WORKERS: String(NUM_WORKERS / 2) }),
    spawnChaosService({
      ...common,
      ROLE: 'worker',
      NUM_WORKERS: String(NUM_WORKERS / 2),
      WORKER_LOCAL_QUEUE_SIZE: String(NUM_WORKERS / 2),
    }),
  ];

  const token = await signToken(JWT_SECRET, { tenantId: 'pg-restart' });
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const created = await fetch(`${apiUrl}/webhooks`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ url: `${receiver.url}/hook`, event_types: ['*'] }),
  });
  expect(created.status).toBe(201);

  const sent: Sent[] = [];
  const inFlight = new Set<Promise<void>>();
  const post = async (i: number) => {
    const sentAt = Date.now();
    const record: Sent = { sentAt, ms: 0, status: 'no answer', deliveryIds: [] };
    sent.push(record);
    try {
      const res = await fetch(`${apiUrl}/events`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ type: 'chaos.tick', payload: { i } }),
        signal: AbortSignal.timeout(20_000),
      });
      const body = (await res.json()) as { delivery_ids?: string[]; error?: { code: string } };
      record.status = res.status;
      record.code = body.error?.code;
      record.deliveryIds = body.delivery_ids ?? [];
    } catch {
      record.status = 'no answer';
    }
    record.ms = Date.now() - sentAt;
  };
  let ticking = true;
  const ticker = (async () => {
    for (let i = 0; ticking; i++) {
      const request = post(i);
      inFlight.add(request);
      void request.finally(() => inFlight.delete(request));
      await new Promise((resolve) => setTimeout(resolve, 1000 / RATE_PER_SEC));
    }
  })();

  // Steady state first: both workers up (each has written its heartbeat) and deliveries arriving.
  // A process still starting when the database goes away exits (its supervisor restarts it);
  // this test is about processes that were running.
  const heartbeats = new pg.Client({ connectionString: server.connectionString });
  await heartbeats.connect();
  try {
    const workerPids = workers.map((w) => w.child.pid);
    await waitFor(
      async () => {
        const { rows } = await heartbeats.query<{ pid: number }>(
          'select distinct pid from worker_heartbeats',
        );
        return workerPids.every((pid) => rows.some((row) => row.pid === pid)) ? true : undefined;
      },
      30_000,
      'both workers started',
    );
  } finally {
    await heartbeats.end();
  }
  await waitFor(() => (receiver!.requests.length >= 40 ? true : undefined), 30_000, 'steady deliveries');
  const stoppedAt = Date.now();
  await server.stop();
  const downAt = Date.now();
  const healthStarted = Date.now();
  const healthDuringOutage = await fetch(`${apiUrl}/health`, { signal: AbortSignal.timeout(20_000) });
  const healthMs = Date.now() - healthStarted;
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, OUTAGE_MS - (Date.now() - downAt))));
  const restartAt = Date.now();
  server = await startEmbeddedPostgres({ dataDir, port });
  const upAt = Date.now();
  expect(server.port).toBe(port);

  // The API comes back by itself: a 202 for an event sent after the restart.
  const firstOkAfter = await waitFor(
    () => sent.find((s) => s.sentAt >= upAt && s.status === 202),
    30_000,
    'a 202 after the restart',
  );
  await new Promise((resolve) => setTimeout(resolve, 3000));
  ticking = false;
  await ticker;
  await Promise.all(inFlight);

  const accepted = sent.filter((s) => s.status === 202);
  const expected = accepted.flatMap((s) => s.deliveryIds);
  const deliveredAt = await waitFor(
    () => (tally(expected, arrivals(receiver!.requests)).lost.length === 0 ? Date.now() : undefined),
    60_000,
    'every accepted event to be delivered',
  ).catch(() => undefined);
  const result = tally(expected, arrivals(receiver.requests));

  const duringOutage = sent.filter((s) => s.sentAt >= downAt && s.sentAt + s.ms < restartAt);
  const statuses = new Map<string, number>();
  for (const s of sent) statuses.set(String(s.status), (statuses.get(String(s.status)) ?? 0) + 1);
  const outageMaxMs = Math.max(0, ...duringOutage.map((s) => s.ms));
  report('postgres restart', {
    outage_ms: restartAt - stoppedAt,
    requests: sent.length,
    statuses: [...statuses].map(([status, n]) => `${status}x${n}`).join(','),
    during_outage: duringOutage.length,
    outage_max_answer_ms: outageMaxMs,
    first_202_after_up_ms: firstOkAfter.sentAt + firstOkAfter.ms - upAt,
    accepted: accepted.length,
    delivered: expected.length - result.lost.length,
    lost: result.lost.length,
    duplicates: result.extraArrivals,
    first_delivery_after_up_ms:
      Math.min(...receiver.requests.filter((r) => r.at >= upAt).map((r) => r.at)) - upAt,
    all_delivered_after_up_ms: deliveredAt === undefined ? 'never' : deliveredAt - upAt,
    health_during_outage: `${healthDuringOutage.status}/${healthMs}ms`,
    workers_alive: workers.filter((w) => w.child.exitCode === null).length,
    runners_replaced: workers.map((w) => w.count('delivery runner replaced')).join('+'),
  });

  expect(sent.filter((s) => s.status === 500 || s.status === 'no answer')).toEqual([]);
  expect(duringOutage.length).toBeGreaterThan(10);
  for (const s of duringOutage) {
    expect(s.status, JSON.stringify(s)).toBe(503);
    expect(s.code).toBe('service_unavailable');
  }
  expect(outageMaxMs).toBeLessThan(10_000);
  expect(healthDuringOutage.status).toBe(503);
  expect(healthMs).toBeLessThan(10_000);
  expect(result.lost, workers.map((w) => w.tail()).join('\n')).toEqual([]);
  // Only attempts in flight when the server went away can be sent twice (same webhook-id).
  expect(result.extraArrivals).toBeLessThanOrEqual(NUM_WORKERS);
  expect(result.unknown).toEqual([]);
  expect(api.child.exitCode).toBeNull();
  for (const worker of workers) expect(worker.child.exitCode, worker.tail()).toBeNull();

  await Promise.all([api, ...workers].map((proc) => stopProcess(proc)));
  // A graceful stop still works after the runner was replaced.
  for (const worker of workers) expect((await worker.exited).code).toBe(0);
  expect((await api.exited).code).toBe(0);
}, 240_000);
