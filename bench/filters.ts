/**
 * `npm run bench:filters`: what payload filters cost at ingest. One ROLE=api process (no
 * delivery) on a fresh PostgreSQL per run, one tenant with 10 webhooks on `bench.*`, 64 clients
 * posting events as fast as they are answered. Runs alternate: 10 webhooks without a filter,
 * then 10 each with its own filter, and so on. Every filter matches every event, so both kinds
 * of run create 10 deliveries per event: the difference is what evaluating filters costs.
 *
 *   --seconds N   length of each run (default 15)
 *   --rounds N    runs of each kind (default 2)
 */
import { signToken } from '../src/http/auth.js';
import { closedLoop, createClient, fmt, line } from './lib.js';
import { BENCH_JWT_SECRET, raiseQuotas, startBenchDatabase, startServiceProcess } from './service-process.js';

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const value = Number(process.argv[i + 1]);
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} takes a whole number ≥ 1`);
  return value;
}

const SECONDS = flag('seconds', 15);
const ROUNDS = flag('rounds', 2);
const CLIENTS = 64;
const WEBHOOKS = 10;
/** Warm-up before each measured run (a fresh process compiles its hot paths first). */
const WARM_UP_SECONDS = 3;

/** Events accepted per second with WEBHOOKS webhooks, each with a filter or none. */
async function ingestRate(withFilters: boolean): Promise<number> {
  const database = await startBenchDatabase('hookrelay-bench-filters-');
  const service = await startServiceProcess({ DATABASE_URL: database.url, ROLE: 'api' });
  try {
    await raiseQuotas(service.baseUrl, 'bench');
    const client = createClient(service.baseUrl, await signToken(BENCH_JWT_SECRET, { tenantId: 'bench' }));
    for (let i = 0; i < WEBHOOKS; i++) {
      // Reads the payload twice, as filters do, and lets every bench event through.
      const filter = `$.data.amount > ${i} && ($.data.region == "eu" || $.data.region == "us")`;
      const created = await client.post('/webhooks', {
        url: 'https://example.com/h',
        event_types: ['bench.*'],
        ...(withFilters ? { filter } : {}),
      });
      if (created.status !== 201) throw new Error(`webhook create failed: ${created.status} ${created.body}`);
    }
    const send = (i: number) =>
      client
        .post('/events', { type: 'bench.filtered', payload: { i, region: i % 2 ? 'us' : 'eu', amount: 100 } })
        .then((r) => r.status);
    await closedLoop(CLIENTS, WARM_UP_SECONDS, send);
    const result = await closedLoop(CLIENTS, SECONDS, send);
    const accepted = result.byStatus.get(202) ?? 0;
    if (accepted !== result.sent) throw new Error(`not every event was accepted: ${[...result.byStatus]}`);
    client.close();
    return accepted / result.seconds;
  } finally {
    await service.stop();
    await database.stop();
  }
}

const rates = { none: [] as number[], filtered: [] as number[] };
for (let round = 1; round <= ROUNDS; round++) {
  const none = await ingestRate(false);
  rates.none.push(none);
  line(`round ${round}: 10 webhooks, no filter (events/s)`, fmt(none));
  const filtered = await ingestRate(true);
  rates.filtered.push(filtered);
  line(`round ${round}: 10 webhooks, each with a filter (events/s)`, fmt(filtered));
}
const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
line('mean without filters (events/s)', fmt(mean(rates.none)));
line('mean with filters (events/s)', fmt(mean(rates.filtered)));
line(
  'filters cost (target: within 20%)',
  `${fmt((1 - mean(rates.filtered) / mean(rates.none)) * 100, 1)}% fewer events/s`,
);
