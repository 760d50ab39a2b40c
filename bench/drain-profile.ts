/**
 * `node --import tsx bench/drain-profile.ts [deliveries]`: a backlog filled by a ROLE=api
 * process (256 clients), then drained by one ROLE=all process on a fresh PostgreSQL with
 * pg_stat_statements: deliveries per second, CPU per delivery, and the statements that took the
 * database's time. For finding where a drain's time goes (`npm run bench` measures it).
 */
import pg from 'pg';
import { signToken } from '../src/http/auth.js';
import { closedLoop, createClient, startReceiver, waitUntil, cpuMeter } from './lib.js';
import { BENCH_JWT_SECRET, raiseQuotas, startBenchDatabase, startServiceProcess } from './service-process.js';
const N = Number(process.argv[2] ?? 30_000);
const database = await startBenchDatabase('hookrelay-drain-', { statementStats: true });
const receiver = await startReceiver(0);
const api = await startServiceProcess({
  DATABASE_URL: database.url,
  SSRF_ALLOWLIST: '127.0.0.1/32',
  ROLE: 'api',
});
const client = createClient(api.baseUrl, await signToken(BENCH_JWT_SECRET, { tenantId: 'bench' }));
await raiseQuotas(api.baseUrl, 'bench');
await client.post('/webhooks', { url: receiver.url, event_types: ['bench.*'] });
let filled = 0;
await closedLoop(
  256,
  600,
  async (i) => {
    const r = await client.post('/events', { type: 'bench.x', payload: { i } });
    if (r.status === 202) filled++;
    return r.status;
  },
  () => filled >= N,
);
client.close();
await api.stop();
const admin = new pg.Client({ connectionString: database.url });
await admin.connect();
await admin.query('select pg_stat_statements_reset()');
const worker = await startServiceProcess({
  DATABASE_URL: database.url,
  SSRF_ALLOWLIST: '127.0.0.1/32',
  ROLE: 'all',
});
const cpu = cpuMeter(() => [worker.child.pid!], database.postmasterPid);
await cpu.start();
const t0 = Date.now();
await waitUntil(() => receiver.distinct() >= filled, 300_000);
const secs = (Date.now() - t0) / 1000;
const split = await cpu.per(filled);
console.log(
  `drained ${filled} in ${secs.toFixed(1)} s: ${(filled / secs).toFixed(0)}/s; CPU service ${split.service.toFixed(3)} pg ${split.database.toFixed(3)} rest ${split.rest.toFixed(3)}; peak RSS ${await worker.peakRss()} MB`,
);
const { rows } = await admin.query(
  `select left(regexp_replace(query, '\\s+', ' ', 'g'), 70) as q, calls, round(total_exec_time::numeric,1)::float as total, round(mean_exec_time::numeric,3)::float as mean from pg_stat_statements order by total_exec_time desc limit 8`,
);
for (const r of rows)
  console.log(
    String(r.total).padStart(8),
    'ms',
    String(r.calls).padStart(6),
    'calls',
    String(r.mean).padStart(7),
    'ms/call',
    r.q,
  );
await admin.end();
await worker.stop();
await receiver.close();
await database.stop();
