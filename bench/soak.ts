/**
 * `npm run soak`: a long open-loop run with a transaction held open in the middle of it.
 *
 * An open transaction that has an xid holds back the xmin horizon: while it stays open, vacuum
 * (and page pruning) can remove no row version that died after it began, so the hot tables —
 * graphile-worker's jobs, deliveries, leases, the rate windows — fill with dead tuples and
 * every scan of them gets slower. The soak shows what that costs and that the service comes
 * back from it: POST latency and event-to-receiver latency recover once the transaction ends,
 * no accepted event is lost, and autovacuum brings the dead tuples back to their usual level.
 *
 * Usage: npm run soak -- [--minutes 10] [--rate 1000] [--hold-from 4] [--hold-minutes 2]
 * A line every 30 s (or every hold length, if shorter, so the hold has lines of its own).
 * Exit code 1 when an event is not accounted for, latency did not recover, or a hot table's
 * dead tuples did not come back within two minutes of the end.
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { signToken } from '../src/http/auth.js';
import { accountFor, createClient, fmt, line, openLoop, percentile, startReceiver } from './lib.js';
import {
  BENCH_JWT_SECRET,
  pendingDeliveries,
  raiseQuotas,
  startBenchDatabase,
  startServiceProcess,
  type ServiceProcess,
} from './service-process.js';

const HOT_TABLES = [
  { schema: 'public', table: 'events', short: 'events' },
  { schema: 'public', table: 'deliveries', short: 'deliv' },
  { schema: 'public', table: 'delivery_attempts', short: 'attempts' },
  { schema: 'public', table: 'delivery_leases', short: 'leases' },
  { schema: 'graphile_worker', table: '_private_jobs', short: 'gw_jobs' },
  { schema: 'public', table: 'event_rate_windows', short: 'ratewin' },
  { schema: 'public', table: 'worker_heartbeats', short: 'hbeat' },
] as const;
type HotTable = (typeof HOT_TABLES)[number]['table'];

/** A hot table is back to normal under this many dead tuples whatever its pre-hold level was. */
const DEAD_TUPLES_FLOOR = 10_000;
const DRAIN_TIMEOUT_MS = 120_000;

type Phase = 'before' | 'during' | 'after';

interface Options {
  minutes: number;
  rate: number;
  holdFrom: number;
  holdMinutes: number;
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '10' },
      rate: { type: 'string', default: '1000' },
      'hold-from': { type: 'string', default: '4' },
      'hold-minutes': { type: 'string', default: '2' },
    },
  });
  const number = (name: string, text: string, min: number): number => {
    const n = Number(text);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number ≥ ${min}, got "${text}"`);
    return n;
  };
  const options = {
    minutes: number('minutes', values.minutes, 0.05),
    rate: number('rate', values.rate, 1),
    holdFrom: number('hold-from', values['hold-from'], 0),
    holdMinutes: number('hold-minutes', values['hold-minutes'], 0.01),
  };
  if (options.holdFrom + options.holdMinutes > options.minutes) {
    throw new Error('the hold must end by the end of the run: --hold-from + --hold-minutes ≤ --minutes');
  }
  return options;
}

/** Dead tuples and autovacuum's trigger level for each hot table, from pg_stat_user_tables. */
interface TableSample {
  dead: number;
  /** autovacuum_vacuum_threshold + autovacuum_vacuum_scale_factor × live tuples. */
  autovacuumAt: number;
}

interface Sample {
  pending: number;
  jobs: number;
  tables: Map<HotTable, TableSample>;
}

async function sample(monitor: pg.Client, url: string): Promise<Sample> {
  const { rows: jobRows } = await monitor.query<{ n: number }>(
    `select count(*)::int as n from graphile_worker._private_jobs`,
  );
  const { rows } = await monitor.query<{ relname: HotTable; dead: string; autovacuum_at: string }>(
    `select relname, n_dead_tup as dead,
            current_setting('autovacuum_vacuum_threshold')::float8
              + current_setting('autovacuum_vacuum_scale_factor')::float8 * n_live_tup as autovacuum_at
       from pg_stat_user_tables
      where (schemaname::text, relname::text) in (select * from unnest($1::text[], $2::text[]))`,
    [HOT_TABLES.map((t) => t.schema), HOT_TABLES.map((t) => t.table)],
  );
  return {
    pending: await pendingDeliveries(url),
    jobs: jobRows[0]?.n ?? 0,
    tables: new Map(
      rows.map((r) => [r.relname, { dead: Number(r.dead), autovacuumAt: Number(r.autovacuum_at) }]),
    ),
  };
}

/** Normal: under the floor, within twice the pre-hold count, or below autovacuum's own trigger. */
function deadTupleLimit(before: TableSample | undefined, now: TableSample | undefined): number {
  return Math.max(DEAD_TUPLES_FLOOR, 2 * (before?.dead ?? 0), now?.autovacuumAt ?? 0);
}

function recovered(before: Sample, now: Sample): boolean {
  return HOT_TABLES.every(
    ({ table }) =>
      (now.tables.get(table)?.dead ?? 0) <= deadTupleLimit(before.tables.get(table), now.tables.get(table)),
  );
}

/** Requests sent, answers, and deliveries received since the last report line. */
interface Window {
  sent: number;
  accepted: number;
  refused: number;
  errors: number;
  /** ms from due time to a 202, for answers received in the window. */
  post: number[];
  /** ms from due time to the receiver, for first arrivals in the window. */
  e2e: number[];
}

const emptyWindow = (): Window => ({ sent: 0, accepted: 0, refused: 0, errors: 0, post: [], e2e: [] });

const COLUMNS: [string, number][] = [
  ['time', 6],
  ['offered', 9],
  ['accepted', 9],
  ['in flight', 10],
  ['POST p99', 9],
  ['e2e p50', 9],
  ['e2e p99', 9],
  ['pending', 9],
  ['jobs', 8],
  ...HOT_TABLES.map((t): [string, number] => [t.short, Math.max(8, t.short.length + 1)]),
];

function row(cells: string[], note = ''): void {
  const text = cells.map((cell, i) => cell.padStart(COLUMNS[i]![1])).join('');
  process.stdout.write(`${text}${note ? `  ${note}` : ''}\n`);
}

const sorted = (values: number[]) => [...values].sort((a, b) => a - b);

/** m:ss since the start of the load. */
function clock(ms: number): string {
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`;
}

async function main(): Promise<void> {
  const options = parseOptions();
  const runMs = options.minutes * 60_000;
  const holdStartMs = options.holdFrom * 60_000;
  const holdEndMs = holdStartMs + options.holdMinutes * 60_000;
  const intervalMs = Math.min(30_000, options.holdMinutes * 60_000);

  const database = await startBenchDatabase('hookrelay-soak-');
  const url = database.url;
  const receiver = await startReceiver();
  const monitor = new pg.Client({ connectionString: url, application_name: 'soak-monitor' });
  let proc: ServiceProcess | undefined;
  let holder: pg.Client | undefined;
  const cleanup = async () => {
    await holder?.end().catch(() => undefined);
    await monitor.end().catch(() => undefined);
    if (proc && proc.child.exitCode === null) proc.child.kill('SIGKILL');
    await receiver.close();
    await database.stop();
  };
  process.once('SIGINT', () => void cleanup().finally(() => process.exit(130)));

  let valid = true;
  let latencyRecovered = true;
  let deadTuplesRecovered = true;
  try {
    await monitor.connect();
    proc = await startServiceProcess({
      DATABASE_URL: url,
      ROLE: 'all',
      NUM_WORKERS: '50',
      SSRF_ALLOWLIST: '127.0.0.1/32',
    });
    await raiseQuotas(proc.baseUrl, 'soak');
    const client = createClient(proc.baseUrl, await signToken(BENCH_JWT_SECRET, { tenantId: 'soak' }));
    const created = await client.post('/webhooks', { url: receiver.url, event_types: ['soak.*'] });
    if (created.status !== 201) throw new Error(`webhook create failed: ${created.status} ${created.body}`);

    process.stdout.write(
      `hookrelay soak — ${os.cpus().length} cores, ${fmt(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}; ` +
        `${fmt(options.rate)} events/s for ${fmt(options.minutes, 2)} min, a transaction held open ` +
        `from minute ${fmt(options.holdFrom, 2)} for ${fmt(options.holdMinutes, 2)} min; one ROLE=all process, 50 workers\n` +
        `columns: requests sent in the window and 202s received in it; requests in flight; POST p99 of those 202s (ms, from the scheduled send time); ` +
        `event-to-receiver p50/p99 (ms) of deliveries that arrived in the window; pending deliveries; ` +
        `graphile_worker jobs; then n_dead_tup of ${HOT_TABLES.map((t) => `${t.short} = ${t.table}`).join(', ')}\n`,
    );
    const leading = COLUMNS.slice(0, COLUMNS.length - HOT_TABLES.length).reduce((sum, [, w]) => sum + w, 0);
    process.stdout.write(`${' '.repeat(leading)}  n_dead_tup:\n`);
    row(COLUMNS.map(([name]) => name));

    const t0 = Date.now();
    const phaseAt = (at: number): Phase =>
      at - t0 < holdStartMs ? 'before' : at - t0 < holdEndMs ? 'during' : 'after';
    let phase: Phase = 'before';
    const postByPhase: Record<Phase, number[]> = { before: [], during: [], after: [] };
    const e2eByPhase: Record<Phase, number[]> = { before: [], during: [], after: [] };
    let window = emptyWindow();
    let sent = 0;
    let answered = 0;
    const collectArrivals = () => {
      // A loop, not push(...spread): a drained backlog can arrive in one window by the hundred thousand.
      for (const ms of receiver.takeLatencies()) {
        window.e2e.push(ms);
        e2eByPhase[phase].push(ms);
      }
    };

    const load = openLoop(options.rate, runMs / 1000, async (i, dueAt) => {
      sent++;
      window.sent++;
      const status = await client
        .post('/events', { type: 'soak.event', payload: { i, sent_at: dueAt } })
        .then((r) => r.status)
        .catch(() => 0);
      answered++;
      if (status === 202) {
        const ms = Date.now() - dueAt;
        window.accepted++;
        window.post.push(ms);
        postByPhase[phaseAt(dueAt)].push(ms);
      } else if (status === 0) window.errors++;
      else window.refused++;
      return status;
    });

    let lastLine: { post99: number; e2e99: number; phase: Phase } | undefined;
    const report = async (note = '') => {
      collectArrivals();
      const closed = window;
      window = emptyWindow();
      const at = Date.now() - t0;
      const inFlight = sent - answered;
      const post = sorted(closed.post);
      const e2e = sorted(closed.e2e);
      lastLine = { post99: percentile(post, 99), e2e99: percentile(e2e, 99), phase };
      const s = await sample(monitor, url);
      row(
        [
          clock(at),
          fmt(closed.sent),
          fmt(closed.accepted),
          fmt(inFlight),
          fmt(percentile(post, 99), 1),
          fmt(percentile(e2e, 50), 1),
          fmt(percentile(e2e, 99), 1),
          fmt(s.pending),
          fmt(s.jobs),
          ...HOT_TABLES.map((t) => fmt(s.tables.get(t.table)?.dead ?? NaN)),
        ],
        [note, closed.refused + closed.errors > 0 ? `${closed.refused} refused, ${closed.errors} errors` : '']
          .filter(Boolean)
          .join('; '),
      );
      return s;
    };

    // The timeline: report lines and the two ends of the hold, in time order.
    const steps: { at: number; order: number; run: () => Promise<void> }[] = [];
    const reportAt = (at: number) =>
      steps.push({
        at,
        order: 0,
        run: async () => {
          await report(phase === 'during' ? 'transaction held open' : '');
        },
      });
    let lastReport = 0;
    for (; lastReport + intervalMs <= runMs + 1; lastReport += intervalMs) reportAt(lastReport + intervalMs);
    if (lastReport < runMs - 1) reportAt(runMs);
    let beforeHold: Sample | undefined;
    let preHoldLine: typeof lastLine;
    let heldXid = '';
    steps.push({
      at: holdStartMs,
      order: 1,
      run: async () => {
        collectArrivals();
        if (lastLine?.phase === 'before') preHoldLine = lastLine;
        beforeHold = await sample(monitor, url);
        holder = new pg.Client({ connectionString: url, application_name: 'soak-hold' });
        await holder.connect();
        await holder.query('begin');
        const { rows } = await holder.query<{ xid: string }>('select txid_current()::text as xid');
        heldXid = rows[0]?.xid ?? '?';
        phase = 'during';
        process.stdout.write(
          `-- ${clock(Date.now() - t0)} transaction ${heldXid} opened (begin; select txid_current();) and left idle in transaction\n`,
        );
      },
    });
    steps.push({
      at: holdEndMs,
      order: 1,
      run: async () => {
        collectArrivals();
        await holder!.query('commit');
        await holder!.end();
        holder = undefined;
        phase = 'after';
        process.stdout.write(`-- ${clock(Date.now() - t0)} transaction ${heldXid} committed\n`);
      },
    });
    steps.sort((a, b) => a.at - b.at || a.order - b.order);
    for (const step of steps) {
      const wait = t0 + step.at - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      await step.run();
    }

    const result = await load;
    const accepted = result.byStatus.get(202) ?? 0;
    const errors = result.byStatus.get(0) ?? 0;
    // The last report line at the load's full rate, after the hold (when the hold ended before the run did).
    const lastLoadLine = lastLine;

    // Drain: the backlog delivered and the dead tuples back to normal, or two minutes.
    process.stdout.write(
      `-- load finished; waiting up to ${DRAIN_TIMEOUT_MS / 1000} s for the backlog to drain and autovacuum to catch up\n`,
    );
    const drainStart = Date.now();
    let nextLine = drainStart + intervalMs;
    let final = await sample(monitor, url);
    const settled = (s: Sample) =>
      receiver.distinct() >= accepted && s.pending === 0 && (!beforeHold || recovered(beforeHold, s));
    while (!settled(final) && Date.now() - drainStart < DRAIN_TIMEOUT_MS) {
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      if (Date.now() >= nextLine) {
        final = await report('draining');
        nextLine += intervalMs;
      } else {
        final = await sample(monitor, url);
      }
    }
    final = await report(settled(final) ? 'settled' : 'drain timeout');

    process.stdout.write('\n');
    valid = accountFor(
      'whole run',
      accepted,
      result.sent - accepted - errors,
      errors,
      result.sent,
      receiver.distinct(),
      final.pending,
    );

    const phases: Phase[] = ['before', 'during', 'after'];
    const quantiles = (values: number[]) => {
      const s = sorted(values);
      return `${fmt(percentile(s, 50), 1)} / ${fmt(percentile(s, 99), 1)}  (n ${fmt(s.length)})`;
    };
    for (const p of phases) {
      line(`POST /events p50 / p99, ${p} the hold (ms)`, quantiles(postByPhase[p]));
    }
    collectArrivals();
    for (const p of phases) {
      line(`event-to-receiver p50 / p99, ${p} the hold (ms)`, quantiles(e2eByPhase[p]));
    }
    process.stdout.write('  (POST by scheduled send time, event-to-receiver by arrival time)\n');
    if (preHoldLine && lastLoadLine?.phase === 'after') {
      // Recovered: the last full-rate window after the hold is back within twice the p99 of the
      // last window before it (or within 10 ms of it). Window against window, so that start-up
      // warm-up in the early minutes does not make the baseline look worse than it is.
      const within = (now: number, then: number) => now <= Math.max(2 * then, then + 10);
      const postOk = within(lastLoadLine.post99, preHoldLine.post99);
      // No delivery arrived before the hold (it started at once): only POST latency can be judged.
      const e2eOk = Number.isNaN(preHoldLine.e2e99) || within(lastLoadLine.e2e99, preHoldLine.e2e99);
      latencyRecovered = postOk && e2eOk;
      line(
        'latency recovered (p99: last window vs. last pre-hold)',
        `${latencyRecovered ? 'yes' : 'NO'}: POST ${fmt(lastLoadLine.post99, 1)} vs ${fmt(preHoldLine.post99, 1)} ms, ` +
          `event-to-receiver ${fmt(lastLoadLine.e2e99, 1)} vs ${fmt(preHoldLine.e2e99, 1)} ms`,
      );
    } else {
      line('latency recovered', 'not judged: no full report window before the hold, or none after it');
    }

    process.stdout.write(
      `\n${'dead tuples (n_dead_tup)'.padEnd(34)}${'before hold'.padStart(12)}${'now'.padStart(12)}${'normal ≤'.padStart(12)}  back to normal\n`,
    );
    for (const { schema, table } of HOT_TABLES) {
      const then = beforeHold?.tables.get(table);
      const now = final.tables.get(table);
      const limit = deadTupleLimit(then, now);
      const ok = (now?.dead ?? 0) <= limit;
      deadTuplesRecovered &&= ok;
      process.stdout.write(
        `  ${`${schema}.${table}`.padEnd(32)}${fmt(then?.dead ?? NaN).padStart(12)}${fmt(now?.dead ?? NaN).padStart(12)}${fmt(limit).padStart(12)}  ${ok ? 'yes' : 'NO'}\n`,
      );
    }
    process.stdout.write(
      `  (normal: under ${fmt(DEAD_TUPLES_FLOOR)}, within 2× the pre-hold count, or under autovacuum's trigger for the table's size)\n\n`,
    );
    client.close();
    await proc.stop();
    line(
      'result',
      [
        valid ? 'valid: every event accounted for' : 'VOID: some events are not accounted for',
        latencyRecovered ? 'latency recovered' : 'latency did NOT recover',
        deadTuplesRecovered ? 'dead tuples back to normal' : 'dead tuples NOT back to normal',
      ].join('; '),
    );
  } finally {
    await cleanup();
  }
  if (!valid || !latencyRecovered || !deadTuplesRecovered) process.exitCode = 1;
}

await main();
