/**
 * `npm run bench`: the service's throughput and latency on this machine, each figure next to
 * the database's own ceiling for the same writes, measured in the same run.
 *
 * It starts its own embedded PostgreSQL, the built service (`node dist/main.js`) as a child
 * process, and a fast receiver; load comes from an open-loop generator (requests sent on a
 * fixed schedule; latency counted from the scheduled time). A phase is void unless every event
 * it sent is accounted for: delivered, refused (4xx/5xx), or still pending at the cut-off; what
 * is still pending then is let arrive, unmeasured, before the next phase begins.
 *
 * Flags: --quick (shorter phases, a 10 000 backlog), --workers N (NUM_WORKERS, default 10: the service's own default),
 * --worker-processes K (0, the default: one ROLE=all process; K: one ROLE=api process and K
 * ROLE=worker processes), --local-queue N (WORKER_LOCAL_QUEUE_SIZE, default 0).
 *
 * CPU per event (service processes / PostgreSQL / the rest of the machine: this bench's load
 * generator and receiver) is read from /proc for three phases: ingest with delivery, ingest
 * alone (the backlog fill), delivery alone (the drain). BENCH_SERVICE_NODE_ARGS adds node flags
 * to the service processes, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` for a V8 profile of each.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import pg from 'pg';
import { signToken } from '../src/api/auth.js';
import {
  accountFor,
  closedLoop,
  cpuMeter,
  createClient,
  fmt,
  line,
  openLoop,
  percentile,
  startReceiver,
  waitUntil,
} from './lib.js';
import {
  BENCH_JWT_SECRET as JWT_SECRET,
  pendingDeliveries,
  raiseQuotas,
  startBenchDatabase,
  startServiceProcess,
  type ServiceProcess,
} from './service-process.js';

const quick = process.argv.includes('--quick');
/** `--name N`: a whole-number flag, or its default. */
function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const value = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(value) || value < 0) throw new Error(`--${name} takes a whole number`);
  return value;
}
/** NUM_WORKERS of each delivering process (the service's default unless told). */
const WORKERS = flag('workers', 10);
/** 0: one process does everything (ROLE=all). K > 0: one ROLE=api process and K ROLE=worker processes. */
const WORKER_PROCESSES = flag('worker-processes', 0);
/** WORKER_LOCAL_QUEUE_SIZE of the delivering processes (0 = off, the service's default). */
const LOCAL_QUEUE = flag('local-queue', 0);
const SECONDS = quick ? 3 : 10;
const BACKLOG = quick ? 10_000 : 100_000;

/** The database's own rate for the service's write shape: event + delivery rows and one add_jobs per batch. */
async function databaseCeiling(
  url: string,
  seconds: number,
  batch: number,
  clients: number,
): Promise<number> {
  const pool = new pg.Pool({ connectionString: url, max: clients });
  const tenant = 'ceiling';
  await pool.query(`insert into tenants (id) values ($1) on conflict do nothing`, [tenant]);
  const webhook = randomUUID();
  await pool.query(
    `insert into webhooks (id, tenant_id, url, event_types, secret) values ($1, $2, 'http://127.0.0.1:9/', '{*}', 'x')`,
    [webhook, tenant],
  );
  const end = Date.now() + seconds * 1000;
  let events = 0;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      const client = await pool.connect();
      try {
        while (Date.now() < end) {
          const ids = Array.from({ length: batch }, () => randomUUID());
          const deliveries = Array.from({ length: batch }, () => randomUUID());
          await client.query('begin');
          await client.query(
            `insert into events (id, tenant_id, type, payload)
             select unnest($1::uuid[]), $2, 'bench.ceiling', '{"n":1}'::jsonb`,
            [ids, tenant],
          );
          await client.query(
            `insert into deliveries (id, event_id, webhook_id, tenant_id)
             select d, e, $3, $4 from unnest($1::uuid[], $2::uuid[]) as t(d, e)`,
            [deliveries, ids, webhook, tenant],
          );
          await client.query(
            `select 1 from graphile_worker.add_jobs(array(
               select row('bench_ceiling', json_build_object('delivery_id', d, 'attempt', 1), null, null, 25,
                          'delivery:' || d, 0, null)::graphile_worker.job_spec
                 from unnest($1::uuid[]) as d))`,
            [deliveries],
          );
          await client.query('commit');
          events += batch;
        }
      } finally {
        client.release();
      }
    }),
  );
  await pool.query(
    `delete from graphile_worker._private_jobs where task_id = (select id from graphile_worker._private_tasks where identifier = 'bench_ceiling')`,
  );
  await pool.query(`delete from events where tenant_id = $1`, [tenant]);
  await pool.end();
  return events / seconds;
}

async function main(): Promise<void> {
  const database = await startBenchDatabase('hookrelay-bench-');
  const url = database.url;
  const receiver = await startReceiver();
  const procs: ServiceProcess[] = [];
  let valid = true;
  try {
    process.stdout.write(
      `hookrelay bench — ${os.cpus().length} cores, ${fmt(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}${quick ? ' (quick)' : ''}\n` +
        `service: ${WORKER_PROCESSES === 0 ? 'one process (ROLE=all)' : `one ROLE=api process + ${WORKER_PROCESSES} ROLE=worker`}, NUM_WORKERS=${WORKERS}, WORKER_LOCAL_QUEUE_SIZE=${LOCAL_QUEUE}\n`,
    );
    const ceiling10 = await databaseCeiling(url, quick ? 2 : 5, 10, 8);
    const ceiling100 = await databaseCeiling(url, quick ? 2 : 5, 100, 8);
    const ceiling = Math.max(ceiling10, ceiling100);
    line('database ceiling, same writes, 10 events/commit (events/s)', fmt(ceiling10));
    line('database ceiling, same writes, 100 events/commit (events/s)', fmt(ceiling100));

    const delivering = {
      DATABASE_URL: url,
      NUM_WORKERS: String(WORKERS),
      WORKER_LOCAL_QUEUE_SIZE: String(LOCAL_QUEUE),
      SSRF_ALLOWLIST: '127.0.0.1/32',
    };
    /** The delivering processes: one ROLE=all, or ROLE=worker ones beside an API process. */
    const startDelivering = () =>
      Promise.all(
        WORKER_PROCESSES === 0
          ? [startServiceProcess(delivering)]
          : Array.from({ length: WORKER_PROCESSES }, () =>
              startServiceProcess({ ...delivering, ROLE: 'worker' }),
            ),
      );
    const service = [
      ...(WORKER_PROCESSES === 0
        ? []
        : [await startServiceProcess({ DATABASE_URL: url, ROLE: 'api', SSRF_ALLOWLIST: '127.0.0.1/32' })]),
      ...(await startDelivering()),
    ];
    procs.push(...service);
    const base = service[0]!.baseUrl;
    const servicePeakRss = async () => Math.max(...(await Promise.all(service.map((p) => p.peakRss()))));
    const client = createClient(base, await signToken(JWT_SECRET, { tenantId: 'bench' }));
    await raiseQuotas(base, 'bench');
    const created = await client.post('/webhooks', { url: receiver.url, event_types: ['bench.*'] });
    if (created.status !== 201) throw new Error(`webhook create failed: ${created.status} ${created.body}`);

    /**
     * Accounts for a phase at its cut-off, then lets what is still pending arrive before the next
     * phase starts (unmeasured), so that no phase counts another's deliveries. Pending is read
     * before the receiver's count: a delivery goes from pending to delivered, never back, so
     * read in this order none can fall between the two.
     */
    const accountAndSettle = async (
      label: string,
      accepted: number,
      refused: number,
      errors: number,
      sent: number,
    ): Promise<boolean> => {
      const pending = await pendingDeliveries(url);
      const ok = accountFor(label, accepted, refused, errors, sent, receiver.distinct(), pending);
      if (pending > 0) await waitUntil(async () => (await pendingDeliveries(url)) === 0, 900_000);
      return ok;
    };

    /** CPU per event of a phase, split between the service, PostgreSQL and the rest (load generator, receiver). */
    const cpuLine = async (label: string, meter: ReturnType<typeof cpuMeter>, units: number) => {
      const cpu = await meter.per(units);
      line(
        `  CPU per ${label} (ms): service / PostgreSQL / rest of the machine`,
        `${fmt(cpu.service, 2)} / ${fmt(cpu.database, 2)} / ${fmt(cpu.rest, 2)}`,
      );
    };

    const emit = (i: number, sentAt: number) =>
      client.post('/events', { type: 'bench.event', payload: { i, sent_at: sentAt } }).then((r) => r.status);

    // 1. Ingest at saturation (closed loop), then how fast everything it accepted is delivered.
    receiver.reset();
    const satCpu = cpuMeter(() => service.map((p) => p.child.pid!), database.postmasterPid);
    await satCpu.start();
    const t0 = Date.now();
    const sat = await closedLoop(64, SECONDS, emit);
    const accepted = sat.byStatus.get(202) ?? 0;
    const ingestRate = accepted / sat.seconds;
    line(
      'ingest at saturation, 64 clients (events/s accepted)',
      `${fmt(ingestRate)}  (${fmt((ingestRate / ceiling) * 100)}% of the ceiling)`,
    );
    line(
      '  POST /events p50 / p99 at saturation (ms)',
      `${fmt(percentile(sat.latencies, 50), 1)} / ${fmt(percentile(sat.latencies, 99), 1)}`,
    );
    await waitUntil(() => receiver.distinct() >= accepted, 120_000);
    const e2eSeconds = ((receiver.lastAt() ?? Date.now()) - t0) / 1000;
    line('end-to-end deliveries/s (ingest start to last delivery)', fmt(receiver.distinct() / e2eSeconds));
    await cpuLine('event accepted and delivered', satCpu, receiver.distinct());
    valid &&= await accountAndSettle(
      'saturation',
      accepted,
      sat.sent - accepted - (sat.byStatus.get(0) ?? 0),
      sat.byStatus.get(0) ?? 0,
      sat.sent,
    );

    // 2. Event-to-receiver latency at fixed offered rates: one well under capacity, then the targets'.
    for (const rate of [200, 1000, 3000]) {
      receiver.reset();
      const run = await openLoop(rate, SECONDS, emit);
      const ok = run.byStatus.get(202) ?? 0;
      await waitUntil(() => receiver.distinct() >= ok, 60_000);
      const lat = receiver.takeLatencies().sort((a, b) => a - b);
      // Over the time the generator actually took: a service that falls behind stretches it.
      line(`offered ${rate}/s: accepted/s`, fmt(ok / run.seconds));
      line(
        `  POST /events p50 / p99 (ms)`,
        `${fmt(percentile(run.latencies, 50), 1)} / ${fmt(percentile(run.latencies, 99), 1)}`,
      );
      line(
        `  event-to-receiver p50 / p95 / p99 (ms)`,
        `${fmt(percentile(lat, 50), 1)} / ${fmt(percentile(lat, 95), 1)} / ${fmt(percentile(lat, 99), 1)}`,
      );
      valid &&= await accountAndSettle(
        `${rate}/s`,
        ok,
        run.sent - ok - (run.byStatus.get(0) ?? 0),
        run.byStatus.get(0) ?? 0,
        run.sent,
      );
    }

    // 3. Fan-out: one event to 100 webhooks.
    const fanClient = createClient(base, await signToken(JWT_SECRET, { tenantId: 'fanout' }));
    await raiseQuotas(base, 'fanout');
    for (let i = 0; i < 100; i++) {
      const res = await fanClient.post('/webhooks', { url: receiver.url, event_types: ['fan.*'] });
      if (res.status !== 201) throw new Error(`webhook create failed: ${res.status} ${res.body}`);
    }
    receiver.reset();
    const fanEvents = quick ? 50 : 200;
    const fanStart = Date.now();
    const fanResults = await Promise.all(
      Array.from({ length: fanEvents }, (_, i) =>
        fanClient.post('/events', { type: 'fan.out', payload: { i } }),
      ),
    );
    const fanAccepted = fanResults.filter((r) => r.status === 202).length;
    await waitUntil(() => receiver.distinct() >= fanAccepted * 100, 120_000);
    line(
      'fan-out, 1 event to 100 webhooks (deliveries/s)',
      fmt(receiver.distinct() / (((receiver.lastAt() ?? Date.now()) - fanStart) / 1000)),
    );
    line('peak RSS of the service so far, largest process (MB)', fmt(await servicePeakRss()));
    fanClient.close();
    client.close();
    await Promise.all(service.map((p) => p.stop()));

    // 4. Drain a backlog: fill it with an API-only process, then let the delivering processes drain it.
    const api = await startServiceProcess({ DATABASE_URL: url, ROLE: 'api' });
    procs.push(api);
    const apiClient = createClient(api.baseUrl, await signToken(JWT_SECRET, { tenantId: 'bench' }));
    let filled = 0;
    const fillCpu = cpuMeter(() => [api.child.pid!], database.postmasterPid);
    await fillCpu.start();
    const fillStart = Date.now();
    await closedLoop(
      64,
      600,
      async (i) => {
        const r = await apiClient.post('/events', { type: 'bench.backlog', payload: { i } });
        if (r.status === 202) filled++;
        return r.status;
      },
      () => filled >= BACKLOG,
    );
    line(
      `backlog fill, API-only process (events/s accepted)`,
      fmt(filled / ((Date.now() - fillStart) / 1000)),
    );
    await cpuLine('event accepted', fillCpu, filled);
    apiClient.close();
    await api.stop();
    receiver.reset();
    const drainers = await startDelivering();
    procs.push(...drainers);
    const drainCpu = cpuMeter(() => drainers.map((p) => p.child.pid!), database.postmasterPid);
    await drainCpu.start();
    await waitUntil(() => receiver.distinct() >= filled, 600_000);
    const drainSeconds = ((receiver.lastAt() ?? Date.now()) - (receiver.firstAt() ?? Date.now())) / 1000;
    line(`backlog drain, ${fmt(filled)} deliveries (deliveries/s)`, fmt(receiver.distinct() / drainSeconds));
    await cpuLine('delivery', drainCpu, receiver.distinct());
    line(
      'peak RSS of the draining service, largest process (MB)',
      fmt(Math.max(...(await Promise.all(drainers.map((p) => p.peakRss()))))),
    );
    await Promise.all(drainers.map((p) => p.stop()));
    line(
      'peak RSS, largest of the service processes (MB)',
      fmt(Math.max(...(await Promise.all(procs.map((p) => p.peakRss()))))),
    );
    line('result', valid ? 'valid: every event accounted for' : 'VOID: some events are not accounted for');
  } finally {
    for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    await receiver.close();
    await database.stop();
  }
  if (!valid) process.exitCode = 1;
}

await main();
