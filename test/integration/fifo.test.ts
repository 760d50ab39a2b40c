/**
 * Ordered delivery (ordering 'fifo'): one delivery at a time per webhook, in event order, with
 * two delivering processes of ten workers each, a receiver that fails some requests, and an
 * unordered webhook of the same tenant alongside.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fifoSeqs, fifoViolations } from '../helpers/fifo.js';
import { spawnService, stopService, waitFor, type ServiceProcess } from '../helpers/process.js';
import { receiverPool, type ReceivedRequest } from '../helpers/receiver.js';
import { startTestService, TEST_JWT_SECRET, type TestService } from '../helpers/service.js';

const EVENTS = 1000;
let svc: TestService;
let second: ServiceProcess;
const receivers = receiverPool();

beforeAll(async () => {
  const env = { NUM_WORKERS: '10', RETRY_SCHEDULE: '0.02,0.02,0.02' };
  svc = await startTestService(env);
  // A second delivering process on the same database.
  second = spawnService({
    ...env,
    DATABASE_URL: svc.database.url,
    JWT_SECRET: TEST_JWT_SECRET,
    ROLE: 'worker',
    SSRF_ALLOWLIST: '127.0.0.1/32',
    LOG_LEVEL: 'warn',
  });
  await waitFor(
    async () => {
      const { rows } = await sql<{ n: number }>`select count(*)::int as n from worker_heartbeats`.execute(
        svc.service.database.db,
      );
      return rows[0]!.n >= 2 ? true : undefined;
    },
    30_000,
    'both processes to be delivering',
  );
});
afterAll(async () => {
  await receivers.closeAll();
  if (second) await stopService(second);
  await svc?.stop();
});

describe('ordering: fifo', () => {
  it(`${EVENTS} events reach a FIFO endpoint in order, though every 7th fails twice; an unordered one keeps its pace`, async () => {
    // Every 7th event's first two attempts fail.
    const statuses = new Map<number, number>();
    const attemptsOf = new Map<string, number>();
    const ordered = await receivers.start({
      behaviour: (index, request) => {
        const id = String(request.headers['webhook-id']);
        const attempt = (attemptsOf.get(id) ?? 0) + 1;
        attemptsOf.set(id, attempt);
        const n = (JSON.parse(request.body) as { data: { n: number } }).data.n;
        const status = n % 7 === 0 && attempt <= 2 ? 500 : 200;
        statuses.set(index, status);
        return { kind: 'status', status };
      },
    });
    const unordered = await receivers.start();
    const token = await svc.token('fifo');
    await svc.call('PUT', '/quotas/fifo', {
      token: await svc.token('ops', { admin: true }),
      body: { max_events_per_sec: 100_000 },
    });
    const fifo = await svc.call('POST', '/webhooks', {
      token,
      body: { url: ordered.url, event_types: ['order.*'], ordering: 'fifo' },
    });
    expect(fifo.status).toBe(201);
    expect(fifo.body.ordering).toBe('fifo');
    await svc.call('POST', '/webhooks', { token, body: { url: unordered.url, event_types: ['bulk.*'] } });

    const started = Date.now();
    // Sixteen at a time: the order is the order in which the events commit (fifo_seq).
    let next = 1;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let n = next++; n <= EVENTS; n = next++) {
          const [a, b] = await Promise.all([
            svc.call('POST', '/events', { token, body: { type: 'order.updated', payload: { n } } }),
            svc.call('POST', '/events', { token, body: { type: 'bulk.created', payload: { n } } }),
          ]);
          if (a.status !== 202 || b.status !== 202) throw new Error(`POST /events: ${a.status} ${b.status}`);
        }
      }),
    );
    const posted = Date.now() - started;
    const distinct = (requests: readonly ReceivedRequest[]) =>
      new Set(requests.map((q) => q.headers['webhook-id'])).size;
    await waitFor(
      () => (distinct(unordered.requests) >= EVENTS ? true : undefined),
      60_000,
      'the unordered endpoint',
    );
    const unorderedDone = Date.now() - started;
    await waitFor(
      () => ([...statuses.values()].filter((s) => s === 200).length >= EVENTS ? true : undefined),
      120_000,
      'every FIFO delivery to succeed',
    );
    const fifoDone = Date.now() - started;

    const seqs = await fifoSeqs(svc.service.database.db, fifo.body.id as string);
    expect(seqs.size).toBe(EVENTS);
    expect(fifoViolations(ordered.requests, seqs, (q) => statuses.get(q.index) === 200).slice(0, 10)).toEqual(
      [],
    );
    const failures = [...statuses.values()].filter((s) => s === 500).length;
    expect(failures).toBe(Math.floor(EVENTS / 7) * 2);
    console.log(
      `FIFO: ${EVENTS} events posted in ${posted} ms; the unordered endpoint had all ${EVENTS} after ` +
        `${unorderedDone} ms, the FIFO one after ${fifoDone} ms (${ordered.requests.length} requests, ` +
        `${failures} failed on purpose): ${Math.round((EVENTS * 1000) / fifoDone)} ordered deliveries/s`,
    );
    // The FIFO endpoint's retries and one-at-a-time pace hold up only itself.
    expect(unorderedDone).toBeLessThan(fifoDone);
    expect(ordered.maxInFlight()).toBe(1);
  });

  it('ordering back to none sends the waiting deliveries in parallel', async () => {
    const gate = await receivers.start({ behaviour: { kind: 'status', status: 503 } });
    const token = await svc.token('fifo-switch');
    const created = await svc.call('POST', '/webhooks', {
      token,
      body: { url: gate.url, event_types: ['*'], ordering: 'fifo' },
    });
    const id = created.body.id as string;
    for (let n = 1; n <= 5; n++)
      await svc.call('POST', '/events', { token, body: { type: 'x.y', payload: { n } } });
    // The head fails and retries; the other four wait behind it.
    await waitFor(() => (gate.requests.length >= 2 ? true : undefined), 15_000, 'the head to be retried');
    expect(new Set(gate.requests.map((q) => q.headers['webhook-id'])).size).toBe(1);
    gate.respond({ kind: 'status', status: 200 });
    const patched = await svc.call('PATCH', `/webhooks/${id}`, { token, body: { ordering: 'none' } });
    expect(patched.body.ordering).toBe('none');
    await waitFor(
      () => (new Set(gate.requests.map((q) => q.headers['webhook-id'])).size === 5 ? true : undefined),
      15_000,
      'all five',
    );
  });
});
