/**
 * A transaction held open (BEGIN; select txid_current(); then idle) on the service's database
 * while events are posted and delivered. It holds the xmin horizon back, so nothing can be
 * vacuumed, yet deliveries must keep flowing; and the runbook query for long transactions must
 * name it.
 */
import pg from 'pg';
import { afterAll, expect, it } from 'vitest';
import { waitFor } from '../helpers/process.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { runbookPsql } from '../helpers/runbook.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { arrivals, report, size, tally } from './support.js';

const HOLD_MS = size(20_000, 120_000);
const RATE_PER_SEC = 20;
const APPLICATION_NAME = 'chaos-long-transaction';

let svc: TestService | undefined;
let receiver: Receiver | undefined;
let holder: pg.Client | undefined;

afterAll(async () => {
  await holder?.end().catch(() => undefined);
  await svc?.stop();
  await receiver?.close();
});

/** The runbook file's output; throws if psql fails. */
async function psql(url: string, file: string, variables: Record<string, string>): Promise<string> {
  const result = await runbookPsql(url, file, variables);
  if (result.code !== 0) throw new Error(`${file}: ${result.stderr || `psql exited ${result.code}`}`);
  return result.stdout;
}

it(
  `a transaction left open for ${HOLD_MS / 1000} s does not stop deliveries, and the runbook query finds it`,
  async () => {
    svc = await startTestService({
      NUM_WORKERS: '10',
      SSRF_ALLOWLIST: '127.0.0.1/32',
      RETRY_SCHEDULE: '0.2,0.5',
    });
    receiver = await startReceiver();
    const token = await svc.token('long-tx');
    const created = await svc.call('POST', '/webhooks', {
      token,
      body: { url: `${receiver.url}/hook`, event_types: ['*'] },
    });
    expect(created.status).toBe(201);

    holder = new pg.Client({ connectionString: svc.database.url, application_name: APPLICATION_NAME });
    await holder.connect();
    const {
      rows: [held],
    } = await holder.query<{ pid: number; txid: string }>(
      'select pg_backend_pid() as pid, txid_current()::text as txid',
    );
    await holder.query('begin');
    await holder.query('select txid_current()');
    const heldSince = Date.now();

    // Steady load for as long as the transaction is held.
    const sentAt = new Map<string, number>();
    const statuses = new Map<number, number>();
    for (let i = 0; Date.now() - heldSince < HOLD_MS; i++) {
      const due = heldSince + (i * 1000) / RATE_PER_SEC;
      if (due > Date.now()) await new Promise((resolve) => setTimeout(resolve, due - Date.now()));
      const t = Date.now();
      const res = await svc.call('POST', '/events', { token, body: { type: 'long.tick', payload: { i } } });
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (res.status === 202) for (const id of res.body.delivery_ids as string[]) sentAt.set(id, t);
    }
    const expected = [...sentAt.keys()];
    // Everything sent is delivered while the transaction is still open.
    await waitFor(
      () => (tally(expected, arrivals(receiver!.requests)).lost.length === 0 ? true : undefined),
      30_000,
      'every delivery while the transaction is still open',
    );
    const stillOpen = await svc.service.database.pool.query<{ state: string; age_s: number }>(
      `select state, extract(epoch from now() - xact_start)::float8 as age_s
       from pg_stat_activity where pid = $1`,
      [held!.pid],
    );
    const runbook = await psql(svc.database.url, 'long-transactions.sql', { older_than: "'10 seconds'" });

    const latencies = receiver.requests
      .map((r) => r.at - sentAt.get(String(r.headers['webhook-id']))!)
      .sort((a, b) => a - b);
    const arrivalTimes = receiver.requests.map((r) => r.at).sort((a, b) => a - b);
    const maxGap = Math.max(0, ...arrivalTimes.slice(1).map((t, i) => t - arrivalTimes[i]!));
    const pct = (q: number) =>
      latencies[Math.min(latencies.length - 1, Math.ceil(q * latencies.length) - 1)]!;
    const runbookLine = runbook.split('\n').find((line) => line.includes(APPLICATION_NAME));
    report('long transaction', {
      held_s: (stillOpen.rows[0]!.age_s ?? 0).toFixed(0),
      events_posted: [...statuses.values()].reduce((a, b) => a + b, 0),
      statuses: [...statuses].map(([s, n]) => `${s}x${n}`).join(','),
      delivered: expected.length,
      latency_p50_ms: pct(0.5),
      latency_p99_ms: pct(0.99),
      latency_max_ms: latencies.at(-1)!,
      max_gap_between_arrivals_ms: maxGap,
      runbook_found_it: runbookLine !== undefined,
    });

    expect(statuses.get(202)).toBeGreaterThan(0);
    expect([...statuses.keys()]).toEqual([202]);
    expect(stillOpen.rows[0]?.state).toBe('idle in transaction');
    expect(stillOpen.rows[0]!.age_s * 1000).toBeGreaterThanOrEqual(HOLD_MS);
    expect(runbookLine, runbook).toBeDefined();
    expect(runbookLine).toMatch(new RegExp(`^\\s*${held!.pid}\\s*\\|`));
    expect(runbookLine).toContain('idle in transaction');

    await holder.query('rollback');
    await holder.end();
    holder = undefined;
  },
  HOLD_MS + 120_000,
);
