/**
 * `node --import tsx bench/profile.ts [rate] [seconds] [receiverDelayMs]`: one open-loop phase
 * against one ROLE=all service on a fresh PostgreSQL with pg_stat_statements, then the
 * statements that took the database's time, per delivery. For finding where a phase's time goes;
 * BENCH_SERVICE_NODE_ARGS='--cpu-prof --cpu-prof-dir=DIR' adds a V8 profile of the service;
 * PROFILE_WARM_RATE=N warms the service up at N events/s (default 200) instead, PROFILE_CLOSED=N
 * runs N clients back to back (the bench's saturation phase) instead of the open loop,
 * PROFILE_ENV='{"ROLE":"api"}' sets service variables (with PROFILE_NO_DELIVERY=1 for ROLE=api),
 * PROFILE_SQL='…' runs SQL on the database before the warm-up (e.g. to try an index).
 */
import pg from 'pg';
import { signToken } from '../src/http/auth.js';
import {
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
  BENCH_JWT_SECRET,
  pendingDeliveries,
  raiseQuotas,
  startBenchDatabase,
  startServiceProcess,
} from './service-process.js';

const [rate = 1000, seconds = 5, delayMs = 0] = process.argv.slice(2).map(Number);
const database = await startBenchDatabase('hookrelay-profile-', { statementStats: true });
const receiver = await startReceiver(delayMs);
const service = await startServiceProcess({
  DATABASE_URL: database.url,
  SSRF_ALLOWLIST: '127.0.0.1/32',
  ...(process.env.PROFILE_ENV ? JSON.parse(process.env.PROFILE_ENV) : {}),
});
try {
  const client = createClient(service.baseUrl, await signToken(BENCH_JWT_SECRET, { tenantId: 'bench' }));
  await raiseQuotas(service.baseUrl, 'bench');
  await client.post('/webhooks', { url: receiver.url, event_types: ['bench.*'] });
  if (process.env.PROFILE_SQL) {
    const setup = new pg.Client({ connectionString: database.url });
    await setup.connect();
    await setup.query(process.env.PROFILE_SQL);
    await setup.end();
  }
  // Warm up (JIT, prepared statements, pools), as a running service is.
  await openLoop(Number(process.env.PROFILE_WARM_RATE ?? 200), 2, (i, sentAt) =>
    client.post('/events', { type: 'bench.warmup', payload: { i, sent_at: sentAt } }).then((r) => r.status),
  );
  if (!process.env.PROFILE_NO_DELIVERY)
    await waitUntil(async () => (await pendingDeliveries(database.url)) === 0, 120_000);
  receiver.takeLatencies();
  const admin = new pg.Client({ connectionString: database.url });
  await admin.connect();
  await admin.query('select pg_stat_statements_reset()');
  const cpu = cpuMeter(() => [service.child.pid!], database.postmasterPid);
  await cpu.start();
  const send = (i: number, sentAt: number) =>
    client.post('/events', { type: 'bench.event', payload: { i, sent_at: sentAt } }).then((r) => r.status);
  // PROFILE_CLOSED=N: N clients back to back (the bench's saturation phase) instead of the open loop.
  const closed = Number(process.env.PROFILE_CLOSED ?? 0);
  const run = closed > 0 ? await closedLoop(closed, seconds, send) : await openLoop(rate, seconds, send);
  if (!process.env.PROFILE_NO_DELIVERY)
    await waitUntil(async () => (await pendingDeliveries(database.url)) === 0, 120_000);
  const lat = receiver.takeLatencies().sort((a, b) => a - b);
  line('accepted/s', fmt((run.byStatus.get(202) ?? 0) / run.seconds));
  line(
    'POST p50 / p99 (ms)',
    `${fmt(percentile(run.latencies, 50), 1)} / ${fmt(percentile(run.latencies, 99), 1)}`,
  );
  line('e2e p50 / p99 (ms)', `${fmt(percentile(lat, 50), 1)} / ${fmt(percentile(lat, 99), 1)}`);
  const delivered = receiver.distinct();
  // The service's own view of POST /events: where its p99 falls among the histogram's buckets.
  const metrics = await (await fetch(`${service.baseUrl}/metrics`)).text();
  const buckets = [...metrics.matchAll(/^http_request_duration_seconds_bucket\{(.*)\} (\d+)$/gm)]
    .filter(
      (m) =>
        m[1]!.includes('route="/events"') &&
        m[1]!.includes('method="POST"') &&
        m[1]!.includes('status_class="2xx"'),
    )
    .map((m) => ({ le: m[1]!.match(/le="([^"]+)"/)![1]!, n: Number(m[2]) }));
  const total = buckets.at(-1)?.n ?? 0;
  const p99Bucket = buckets.find((b) => b.n >= total * 0.99)?.le;
  line('service-side POST /events p99 at or below (s), all requests since start', String(p99Bucket));
  line('service-side POST /events by bucket (le: count)', buckets.map((b) => `${b.le}: ${b.n}`).join(', '));
  const split = await cpu.per(Math.max(delivered, run.byStatus.get(202) ?? 0));
  line(
    'CPU per event delivered (ms): service / PostgreSQL / rest',
    `${fmt(split.service, 2)} / ${fmt(split.database, 2)} / ${fmt(split.rest, 2)}`,
  );
  const { rows } = await admin.query<{
    q: string;
    calls: string;
    total: number;
    mean: number;
    rows: string;
  }>(`
    select left(regexp_replace(query, '\\s+', ' ', 'g'), 90) as q, calls, round(total_exec_time::numeric, 1)::float as total,
           round(mean_exec_time::numeric, 3)::float as mean, rows
      from pg_stat_statements order by total_exec_time desc limit 15`);
  for (const r of rows) {
    process.stdout.write(
      `${String(r.total).padStart(9)} ms ${String(r.calls).padStart(7)} calls ${String(r.mean).padStart(8)} ms/call ${(Number(r.calls) / delivered).toFixed(3)}/delivery  ${r.q}\n`,
    );
  }
  await admin.end();
  client.close();
} finally {
  await service.stop();
  await receiver.close();
  await database.stop();
}
