/**
 * `npm run bench:ingest-options`: what payload filters and event type schemas cost at ingest.
 * One ROLE=api process (no delivery) on a fresh PostgreSQL per run, one tenant with 10 webhooks
 * on `bench.*`, 64 clients posting events as fast as they are answered. Each round runs three
 * kinds in turn: plain; each webhook with its own filter; the event type with a JSON Schema in
 * the catalog. Every filter matches every event and every payload passes the schema, so every
 * run creates 10 deliveries per event: the differences are what filters and schemas cost.
 *
 *   --seconds N   length of each run (default 15)
 *   --rounds N    runs of each kind (default 2)
 */
import { signToken } from '../src/http/auth.js';
import { closedLoop, createClient, fmt, line, numberFlag } from './lib.js';
import { BENCH_JWT_SECRET, raiseQuotas, startBenchDatabase, startServiceProcess } from './service-process.js';

const flag = (name: string, fallback: number) => numberFlag(name, 1) ?? fallback;

const SECONDS = flag('seconds', 15);
const ROUNDS = flag('rounds', 2);
const CLIENTS = 64;
const WEBHOOKS = 10;
/** What each bench payload is checked against in the schema runs. */
const PAYLOAD_SCHEMA = {
  type: 'object',
  required: ['i', 'region', 'amount'],
  properties: {
    i: { type: 'integer', minimum: 0 },
    region: { type: 'string', enum: ['eu', 'us'] },
    amount: { type: 'number', minimum: 0 },
  },
};
/** Warm-up before each measured run (a fresh process compiles its hot paths first). */
const WARM_UP_SECONDS = 3;

/** Events accepted per second with WEBHOOKS webhooks, each with a filter or none. */
type Kind = 'plain' | 'filters' | 'schema';

async function ingestRate(kind: Kind): Promise<number> {
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
        ...(kind === 'filters' ? { filter } : {}),
      });
      if (created.status !== 201) throw new Error(`webhook create failed: ${created.status} ${created.body}`);
    }
    if (kind === 'schema') {
      const put = await client.put('/event-types/bench.filtered', { schema: PAYLOAD_SCHEMA });
      if (put.status !== 201) throw new Error(`event type create failed: ${put.status} ${put.body}`);
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

const kinds: Kind[] = ['plain', 'filters', 'schema'];
const labels: Record<Kind, string> = {
  plain: '10 webhooks, no filter, no schema',
  filters: '10 webhooks, each with a filter',
  schema: '10 webhooks, the type with a JSON Schema',
};
const rates: Record<Kind, number[]> = { plain: [], filters: [], schema: [] };
for (let round = 1; round <= ROUNDS; round++) {
  for (const kind of kinds) {
    const rate = await ingestRate(kind);
    rates[kind].push(rate);
    line(`round ${round}: ${labels[kind]} (events/s)`, fmt(rate));
  }
}
const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
for (const kind of kinds) line(`mean, ${labels[kind]} (events/s)`, fmt(mean(rates[kind])));
const cost = (kind: Kind) => `${fmt((1 - mean(rates[kind]) / mean(rates.plain)) * 100, 1)}% fewer events/s`;
line('filters cost (target: within 20%)', cost('filters'));
line('schemas cost (target: within 15%)', cost('schema'));
