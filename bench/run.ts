/**
 * `npm run bench`: the service's throughput and latency on this machine, next to the
 * database's own ceiling for the same writes, measured in the same run.
 *
 * Every measurement gets its own fresh embedded PostgreSQL (the server's defaults: fsync and
 * synchronous_commit on) and its own built service (`node dist/main.js`), with one tenant
 * whose quotas are lifted and one webhook that matches each event. Load comes from an
 * open-loop generator: request i is due at a fixed time whatever happened to earlier ones, and
 * every latency counts from that time, so a service that falls behind shows it as latency.
 * Before a phase is measured, the fresh service runs 3 s at the phase's own rate (saturation:
 * 2,000/s), unmeasured, and its backlog is let drain.
 *
 * A phase is void unless every request it sent is accounted for: accepted, refused (4xx/5xx)
 * or failed in transport (which voids it too), and every accepted event delivered or still
 * pending at the cut-off, one second after sending ends; what is pending then is the phase's
 * "undelivered at end of phase". The rest is let arrive, unmeasured except for its
 * event-to-receiver latency, for at most two minutes ("backlog not drained" when some is left).
 *
 * Flags:
 *   --quick                 3 s phases and a 10,000 backlog (default: 15 s and 100,000)
 *   --receiver-delay-ms N   only a receiver that answers N ms after the request arrives
 *                           (default: one that answers at once, then one after 100 ms)
 *   --workers N             NUM_WORKERS (default: not set, the service's own default)
 *   --worker-processes K    0 (default): one ROLE=all process; K: one ROLE=api and K ROLE=worker
 *   --local-queue N         WORKER_LOCAL_QUEUE_SIZE (default: not set, the service's own: off)
 *
 * CPU per event (service processes / PostgreSQL / the rest of the machine: this bench's load
 * generator and receiver, and anything else running) is read from /proc. BENCH_SERVICE_NODE_ARGS
 * adds node flags to the service processes, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import pg from 'pg';
import { signToken } from '../src/http/auth.js';
import {
  accountFor,
  closedLoop,
  cpuMeter,
  createClient,
  fmt,
  line,
  numberFlag,
  openLoop,
  percentile,
  sleep,
  startReceiver,
  waitUntil,
  type Client,
  type CpuSplit,
  type LoadResult,
  type Receiver,
} from './lib.js';
import {
  BENCH_JWT_SECRET as JWT_SECRET,
  databaseCounters,
  durabilitySettings,
  pendingDeliveries,
  raiseQuotas,
  startBenchDatabase,
  startServiceProcess,
  type BenchDatabase,
  type ServiceProcess,
} from './service-process.js';
import { describeYardstick, isAhead, yardstickFor } from './yardstick.js';

const quick = process.argv.includes('--quick');
/** NUM_WORKERS of each delivering process; undefined leaves the service's default. */
const WORKERS = numberFlag('workers');
/** 0: one process does everything (ROLE=all). K > 0: one ROLE=api process and K ROLE=worker processes. */
const WORKER_PROCESSES = numberFlag('worker-processes') ?? 0;
/** WORKER_LOCAL_QUEUE_SIZE of the delivering processes; undefined leaves the service's default (off). */
const LOCAL_QUEUE = numberFlag('local-queue');
const RECEIVER_DELAYS_MS = ((delay) => (delay === undefined ? [0, 100] : [delay]))(
  numberFlag('receiver-delay-ms'),
);
const RATES = [250, 500, 1000, 2000, 3000];
const SATURATION_CLIENTS = 64;
/**
 * Clients filling the backlog: ingest alone answers in ~13 ms, so 64 clients back to back
 * measure that wait (4,100–5,200/s here) rather than what the process can take.
 */
const FILL_CLIENTS = 256;
const SECONDS = quick ? 3 : 15;
const BACKLOG = quick ? 10_000 : 100_000;
/** Undelivered is read this long after sending ends. */
const CUT_OFF_MS = 1000;
/** The longest a phase waits for its leftovers to arrive before the next one starts. */
const DRAIN_CAP_MS = 120_000;
const BACKLOG_DRAIN_CAP_MS = quick ? 180_000 : 900_000;
const FAN_OUT_WEBHOOKS = 100;

/** The database's own rate for the service's write shape: event + delivery rows and one add_jobs per batch. */
async function databaseCeiling(
  url: string,
  seconds: number,
  batch: number,
  clients: number,
): Promise<number> {
  const pool = new pg.Pool({ connectionString: url, max: clients });
  // An idle client may hear the server stop before the pool ends; that is not the bench's failure.
  pool.on('error', () => undefined);
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

/** A fresh database with the service on it: a tenant `bench` with lifted quotas and its webhooks. */
interface Stack {
  database: BenchDatabase;
  /** The `bench` tenant's client, on the process that answers the API. */
  client: Client;
  /** Starts the delivering processes: one ROLE=all, or K ROLE=worker. */
  startDelivering(): Promise<ServiceProcess[]>;
  /** CPU per unit of work from now on, of the live service processes and the database. */
  cpu(): ReturnType<typeof cpuMeter>;
  /** Stops every service process (gracefully), the database stays. */
  stopService(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The unmeasured load a fresh delivering service gets before its phase: its phase's own rate
 * (saturation: WARM_UP_RATE), so that a phase measures a service running at that rate rather
 * than one jumping to it from idle (the jump's first seconds are in docs/capacity-planning.md).
 */
const WARM_UP_RATE = 2000;
const WARM_UP_SECONDS = 3;

/** Every service process and database started, for peak RSS and for clean-up after a failure. */
const started = { processes: [] as ServiceProcess[], databases: [] as BenchDatabase[] };

async function startStack(
  prefix: string,
  receiverUrl: string,
  options: { webhooks?: number; delivery?: boolean; statementStats?: boolean; warmUpRate?: number } = {},
): Promise<Stack> {
  const database = await startBenchDatabase(prefix, { statementStats: options.statementStats ?? false });
  started.databases.push(database);
  const env = {
    DATABASE_URL: database.url,
    SSRF_ALLOWLIST: '127.0.0.1/32',
    ...(WORKERS === undefined ? {} : { NUM_WORKERS: String(WORKERS) }),
    ...(LOCAL_QUEUE === undefined ? {} : { WORKER_LOCAL_QUEUE_SIZE: String(LOCAL_QUEUE) }),
  };
  let live: ServiceProcess[] = [];
  const launch = async (role: 'all' | 'api' | 'worker', count = 1) => {
    const processes = await Promise.all(
      Array.from({ length: count }, () => startServiceProcess({ ...env, ROLE: role })),
    );
    started.processes.push(...processes);
    live.push(...processes);
    return processes;
  };
  const stopService = async () => {
    await Promise.all(live.map((p) => p.stop()));
    live = [];
  };
  const startDelivering = () => (WORKER_PROCESSES > 0 ? launch('worker', WORKER_PROCESSES) : launch('all'));
  const [api] = await launch(WORKER_PROCESSES > 0 || options.delivery === false ? 'api' : 'all');
  if (options.delivery !== false && WORKER_PROCESSES > 0) await startDelivering();
  await raiseQuotas(api!.baseUrl, 'bench');
  const client = createClient(api!.baseUrl, await signToken(JWT_SECRET, { tenantId: 'bench' }));
  for (let i = 0; i < (options.webhooks ?? 1); i++) {
    const created = await client.post('/webhooks', { url: receiverUrl, event_types: ['bench.*'] });
    if (created.status !== 201) throw new Error(`webhook create failed: ${created.status} ${created.body}`);
  }
  if (options.delivery !== false && (options.webhooks ?? 1) === 1) {
    // A fresh process compiles its hot paths during its first thousand requests or so: warm it
    // up, unmeasured (its deliveries arrive before the phase resets the receiver), as a running
    // service is.
    await openLoop(options.warmUpRate ?? WARM_UP_RATE, WARM_UP_SECONDS, (i, at) =>
      client.post('/events', { type: 'bench.warmup', payload: { i, sent_at: at } }).then((r) => r.status),
    );
    await waitUntil(async () => (await pendingDeliveries(database.url)) === 0, 60_000);
  }
  return {
    database,
    client,
    startDelivering,
    cpu: () => cpuMeter(() => live.map((p) => p.child.pid!), database.postmasterPid),
    stopService,
    async stop() {
      client.close();
      await stopService();
      await database.stop();
    },
  };
}

/** One load phase's figures, for its lines and its row of the final table. */
interface PhaseResult {
  name: string;
  receiverDelayMs: number;
  acceptedPerSec: number;
  /** POST /events latencies of accepted requests, sorted. */
  post: number[];
  /** Event-to-receiver p50 / p95 / p99; Infinity where the percentile falls among undelivered events. */
  e2e: [number, number, number];
  /** Deliveries pending at the cut-off. */
  undelivered: number;
  /** Accepted events still not at the receiver when the phase gave up waiting (0 when drained). */
  leftOver: number;
  /** From the end of sending to the end of the wait for leftovers. */
  waitedMs: number;
  deliveredPerSec: number;
  cpu: CpuSplit;
  /** Whether every request is accounted for at the cut-off; prints the accounting line. */
  account(): boolean;
}

/**
 * On a fresh stack: `generate` sends `bench.event`s whose payload carries their send time, the
 * cut-off counts what is undelivered, then the leftovers are given DRAIN_CAP_MS to arrive.
 */
async function loadPhase(
  name: string,
  receiver: Receiver,
  generate: (send: (i: number, at: number) => Promise<number>) => Promise<LoadResult>,
  warmUpRate?: number,
): Promise<PhaseResult> {
  const stack = await startStack(`hookrelay-bench-${name.replace(/\W+/g, '')}-`, receiver.url, {
    ...(warmUpRate === undefined ? {} : { warmUpRate }),
  });
  try {
    receiver.reset();
    const meter = stack.cpu();
    await meter.start();
    const startedAt = Date.now();
    const run = await generate((i, at) =>
      stack.client
        .post('/events', { type: 'bench.event', payload: { i, sent_at: at } })
        .then((r) => r.status),
    );
    const sendEnd = Date.now();
    const accepted = run.byStatus.get(202) ?? 0;
    const errors = run.byStatus.get(0) ?? 0;
    await sleep(sendEnd + CUT_OFF_MS - Date.now());
    // Pending before the receiver's count: a delivery goes from pending to delivered, never back.
    const undelivered = await pendingDeliveries(stack.database.url);
    const deliveredAtCutOff = receiver.distinct();
    await waitUntil(() => receiver.distinct() >= accepted, DRAIN_CAP_MS);
    const waitedMs = Date.now() - sendEnd;
    const delivered = receiver.distinct();
    const cpu = await meter.per(delivered);
    const e2e = receiver.takeLatencies().sort((a, b) => a - b);
    return {
      name,
      receiverDelayMs: receiver.delayMs,
      acceptedPerSec: accepted / run.seconds,
      post: run.latencies,
      e2e: [percentile(e2e, 50, accepted), percentile(e2e, 95, accepted), percentile(e2e, 99, accepted)],
      undelivered,
      leftOver: Math.max(0, accepted - delivered),
      waitedMs,
      deliveredPerSec: delivered / (((receiver.lastAt() ?? Date.now()) - startedAt) / 1000),
      cpu,
      account: () =>
        accountFor(
          `${name}, ${receiverName(receiver.delayMs)}`,
          accepted,
          run.sent - accepted - errors,
          errors,
          run.sent,
          deliveredAtCutOff,
          undelivered,
        ),
    };
  } finally {
    await stack.stop();
  }
}

const receiverName = (delayMs: number) =>
  delayMs === 0 ? 'receiver at once' : `receiver after ${delayMs} ms`;

/** A latency in ms; one among undelivered events is shown as more than the time waited for them. */
const ms = (value: number, waitedMs: number, digits = 1) =>
  value === Infinity ? `>${fmt(waitedMs)}` : fmt(value, digits);

/** Prints a phase's lines; false when it is void. */
function printPhase(result: PhaseResult, ceiling: number, saturation: boolean): boolean {
  const e2e = result.e2e.map((v) => ms(v, result.waitedMs)).join(' / ');
  if (saturation) {
    line(
      `  saturation, ${SATURATION_CLIENTS} clients closed loop: accepted/s`,
      `${fmt(result.acceptedPerSec)}  (${fmt((result.acceptedPerSec / ceiling) * 100)}% of the ceiling)`,
    );
    line('    delivered end to end/s (first send to last delivery)', fmt(result.deliveredPerSec));
  } else {
    line(`  offered ${result.name}: accepted/s`, fmt(result.acceptedPerSec));
  }
  line(
    '    POST /events p50 / p99 (ms)',
    `${fmt(percentile(result.post, 50), 1)} / ${fmt(percentile(result.post, 99), 1)}`,
  );
  line(`    event-to-receiver p50 / p95 / p99 (ms${saturation ? ', from the send' : ''})`, e2e);
  line(
    `    undelivered at end of phase (${fmt(CUT_OFF_MS / 1000)} s after sending ended)`,
    fmt(result.undelivered),
  );
  line(
    '    CPU per event delivered (ms): service / PostgreSQL / rest',
    `${fmt(result.cpu.service, 2)} / ${fmt(result.cpu.database, 2)} / ${fmt(result.cpu.rest, 2)}`,
  );
  if (result.leftOver > 0) {
    line(
      '    backlog not drained',
      `${fmt(result.leftOver)} events not delivered ${fmt(result.waitedMs / 1000)} s after sending ended`,
    );
  }
  return result.account();
}

/** A phase against its yardstick (bench/yardstick.ts): `17 / 24 ahead`, or empty when it has none. */
function yardstickCell(r: PhaseResult): { cell: string; ahead?: boolean } {
  const yardstick = yardstickFor(r.receiverDelayMs, r.name);
  if (!yardstick) return { cell: '' };
  const ahead = isAhead(
    {
      postP99: percentile(r.post, 99),
      e2eP99: r.e2e[2],
      perSec: r.deliveredPerSec,
      allDelivered: r.undelivered === 0 && r.leftOver === 0,
    },
    yardstick,
  );
  return { cell: `${describeYardstick(yardstick, fmt)} ${ahead ? 'ahead' : 'behind'}`, ahead };
}

/** The final table: one row per offered rate (and saturation) and receiver. */
function printTable(results: PhaseResult[]): void {
  const compared = results.map(yardstickCell);
  const rows = [
    [
      'receiver',
      'offered',
      'accepted/s',
      'POST p50/p99 (ms)',
      'e2e p50/p95/p99 (ms)',
      'undelivered at end',
      'yardstick',
    ],
    ...results.map((r, i) => [
      r.receiverDelayMs === 0 ? 'at once' : `${r.receiverDelayMs} ms`,
      r.name,
      fmt(r.acceptedPerSec),
      `${fmt(percentile(r.post, 50), 1)} / ${fmt(percentile(r.post, 99), 1)}`,
      r.e2e.map((v) => ms(v, r.waitedMs, 0)).join(' / '),
      `${fmt(r.undelivered)}${r.leftOver > 0 ? ` (${fmt(r.leftOver)} not drained)` : ''}`,
      compared[i]!.cell,
    ]),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  process.stdout.write('\n');
  for (const row of rows) {
    process.stdout.write(
      row.map((cell, c) => (c < 2 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join(' | ') + '\n',
    );
  }
  const held = compared.filter((c) => c.ahead !== undefined);
  process.stdout.write(
    `\nahead of the yardstick (bench/yardstick.ts) in ${held.filter((c) => c.ahead).length} of ${held.length} phases\n\n`,
  );
}

const cpuLine = (label: string, cpu: CpuSplit) =>
  line(
    `  CPU per ${label} (ms): service / PostgreSQL / rest`,
    `${fmt(cpu.service, 2)} / ${fmt(cpu.database, 2)} / ${fmt(cpu.rest, 2)}`,
  );

async function main(): Promise<void> {
  const benchStart = Date.now();
  const immediate = await startReceiver(0);
  const receivers = [immediate];
  let valid = true;
  try {
    const ceilingDatabase = await startBenchDatabase('hookrelay-bench-ceiling-');
    started.databases.push(ceilingDatabase);
    process.stdout.write(
      `hookrelay bench — ${os.cpus().length} cores, ${fmt(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}${quick ? ' (quick)' : ''}\n` +
        `service: ${WORKER_PROCESSES === 0 ? 'one process (ROLE=all)' : `one ROLE=api process + ${WORKER_PROCESSES} ROLE=worker`}, ` +
        `NUM_WORKERS=${WORKERS ?? process.env.NUM_WORKERS ?? 'default'}, WORKER_LOCAL_QUEUE_SIZE=${LOCAL_QUEUE ?? process.env.WORKER_LOCAL_QUEUE_SIZE ?? 'default'}\n` +
        `each phase on a fresh PostgreSQL (${await durabilitySettings(ceilingDatabase.url)}), ${SECONDS} s per offered rate\n`,
    );
    const ceiling10 = await databaseCeiling(ceilingDatabase.url, quick ? 2 : 5, 10, 8);
    const ceiling100 = await databaseCeiling(ceilingDatabase.url, quick ? 2 : 5, 100, 8);
    await ceilingDatabase.stop();
    const ceiling = Math.max(ceiling10, ceiling100);
    line('database ceiling, same writes, 10 events/commit (events/s)', fmt(ceiling10));
    line('database ceiling, same writes, 100 events/commit (events/s)', fmt(ceiling100));

    // 1. Fixed offered rates, then saturation, with each receiver.
    const results: PhaseResult[] = [];
    for (const delayMs of RECEIVER_DELAYS_MS) {
      const receiver = delayMs === 0 ? immediate : await startReceiver(delayMs);
      if (receiver !== immediate) receivers.push(receiver);
      process.stdout.write(`\n${receiverName(delayMs)}, open loop, one webhook per event:\n`);
      for (const rate of RATES) {
        const result = await loadPhase(
          `${fmt(rate)}/s`,
          receiver,
          (send) => openLoop(rate, SECONDS, send),
          rate,
        );
        valid = printPhase(result, ceiling, false) && valid;
        results.push(result);
      }
      const saturation = await loadPhase('saturation', receiver, (send) =>
        closedLoop(SATURATION_CLIENTS, SECONDS, send),
      );
      valid = printPhase(saturation, ceiling, true) && valid;
      results.push(saturation);
    }
    process.stdout.write('\n');

    // 2. Fan-out: one event to 100 webhooks.
    const fan = await startStack('hookrelay-bench-fanout-', immediate.url, { webhooks: FAN_OUT_WEBHOOKS });
    try {
      immediate.reset();
      const fanEvents = quick ? 50 : 200;
      const fanStart = Date.now();
      const fanResults = await Promise.all(
        Array.from({ length: fanEvents }, (_, i) =>
          fan.client.post('/events', { type: 'bench.fan', payload: { i } }),
        ),
      );
      const expected = fanResults.filter((r) => r.status === 202).length * FAN_OUT_WEBHOOKS;
      const arrived = await waitUntil(() => immediate.distinct() >= expected, DRAIN_CAP_MS);
      line(
        `fan-out, 1 event to ${FAN_OUT_WEBHOOKS} webhooks (deliveries/s)`,
        `${fmt(immediate.distinct() / (((immediate.lastAt() ?? Date.now()) - fanStart) / 1000))}` +
          (arrived
            ? ''
            : `  (not drained: ${fmt(expected - immediate.distinct())} of ${fmt(expected)} missing)`),
      );
    } finally {
      await fan.stop();
    }

    // 3. A backlog: filled by an API-only process (delivery off), then drained by the delivering processes.
    const backlog = await startStack('hookrelay-bench-backlog-', immediate.url, {
      delivery: false,
      statementStats: true,
    });
    try {
      let filled = 0;
      const fillCpu = backlog.cpu();
      await fillCpu.start();
      const fillStart = Date.now();
      await closedLoop(
        FILL_CLIENTS,
        600,
        async (i) => {
          const r = await backlog.client.post('/events', { type: 'bench.backlog', payload: { i } });
          if (r.status === 202) filled++;
          return r.status;
        },
        () => filled >= BACKLOG,
      );
      line(
        `backlog fill, ROLE=api, no delivery, ${FILL_CLIENTS} clients (events/s; target ≥ 6,000)`,
        fmt(filled / ((Date.now() - fillStart) / 1000)),
      );
      cpuLine('event accepted', await fillCpu.per(filled));
      await backlog.stopService();
      immediate.reset();
      const before = await databaseCounters(backlog.database);
      const drainers = await backlog.startDelivering();
      const drainCpu = backlog.cpu();
      await drainCpu.start();
      const drained = await waitUntil(() => immediate.distinct() >= filled, BACKLOG_DRAIN_CAP_MS);
      const delivered = immediate.distinct();
      const drainSeconds = ((immediate.lastAt() ?? Date.now()) - (immediate.firstAt() ?? Date.now())) / 1000;
      line(
        `backlog drain, ${fmt(filled)} deliveries (deliveries/s)`,
        fmt(delivered / drainSeconds) +
          (drained ? '' : `  (not drained: ${fmt(filled - delivered)} missing)`),
      );
      cpuLine('delivery', await drainCpu.per(delivered));
      line(
        '  peak RSS of the draining service, largest process (MB)',
        fmt(Math.max(...(await Promise.all(drainers.map((p) => p.peakRss()))))),
      );
      await backlog.stopService();
      // Read after the processes stop: a backend's counts reach pg_stat_database when it idles or exits.
      const after = await databaseCounters(backlog.database);
      line(
        '  statements per delivery (pg_stat_statements, top level)',
        fmt((after.statements - before.statements) / delivered, 2),
      );
      line(
        '  transactions per delivery (pg_stat_database)',
        fmt((after.transactions - before.transactions) / delivered, 2),
      );
    } finally {
      await backlog.stop();
    }

    line(
      'peak RSS, largest of the service processes (MB)',
      fmt(Math.max(...(await Promise.all(started.processes.map((p) => p.peakRss()))))),
    );
    printTable(results);
    line('run time (min)', fmt((Date.now() - benchStart) / 60_000, 1));
    line('result', valid ? 'valid: every event accounted for' : 'VOID: some events are not accounted for');
  } finally {
    for (const p of started.processes) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    await Promise.all(receivers.map((r) => r.close()));
    for (const database of started.databases) await database.stop().catch(() => undefined);
  }
  if (!valid) process.exitCode = 1;
}

await main();
