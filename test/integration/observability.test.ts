/**
 * GET /metrics of a real service: the contract's metric names, the gauges read from the
 * database (queue depth, oldest due job, DLQ size), counters moved by real deliveries (retries
 * by attempt, SSRF blocks, outcomes), no label value that names a tenant, webhook, delivery or
 * URL, and the METRICS_PORT listener of a ROLE=worker process. Also the gauge query at 100 000
 * waiting jobs: its plan and time are printed, its figures checked.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase } from '../../src/db/database.js';
import { queueFiguresQuery, readQueueFigures } from '../../src/observability/queue-gauges.js';
import { createTestDatabase } from '../helpers/database.js';
import { queueDelivery } from '../helpers/fixtures.js';
import { waitFor } from '../helpers/process.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { startTestService, type TestService } from '../helpers/service.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text format, sample lines only. */
function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!match) throw new Error(`unparsable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1]!] = pair[2]!;
    }
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([key, value]) => s.labels[key] === value),
  );
  if (found.length === 0) return undefined;
  return found.reduce((sum, s) => sum + s.value, 0);
}

async function scrape(url: string): Promise<Sample[]> {
  const response = await fetch(`${url}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
  return parseMetrics(await response.text());
}

describe('metrics of a service that delivers', () => {
  let app: TestService;
  let receiver: Receiver;

  beforeAll(async () => {
    receiver = await startReceiver();
    app = await startTestService({ RETRY_SCHEDULE: '0.05,0.05' });
  });
  afterAll(async () => {
    await app?.stop();
    await receiver?.close();
  });

  it('exposes the contract names, the process metrics and zeroed series for known label values', async () => {
    await app.call('GET', '/health');
    const samples = await scrape(app.url);
    const names = new Set(samples.map((s) => s.name));
    for (const name of [
      'webhook_events_ingested_total',
      'webhook_deliveries_total',
      'webhook_delivery_duration_seconds_bucket',
      'webhook_event_to_delivery_seconds_bucket',
      'webhook_queue_depth',
      'webhook_queue_oldest_job_age_seconds',
      'dlq_size',
      'http_request_duration_seconds_bucket',
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_p99_seconds',
    ]) {
      expect(names, name).toContain(name);
    }
    // Before any delivery: each outcome, SSRF stage, limit and DLQ retry kind reads 0, not nothing.
    for (const outcome of ['success', 'failure', 'dead'])
      expect(valueOf(samples, 'webhook_deliveries_total', { outcome })).toBe(0);
    for (const stage of ['literal', 'connect'])
      expect(valueOf(samples, 'webhook_ssrf_blocked_total', { stage })).toBe(0);
    for (const limit of ['events_per_sec', 'concurrent_deliveries'])
      expect(valueOf(samples, 'webhook_rate_limited_total', { limit })).toBe(0);
    for (const kind of ['single', 'bulk'])
      expect(valueOf(samples, 'webhook_dlq_retries_total', { kind })).toBe(0);
  });

  it('counts outcomes, retries by attempt, SSRF blocks and dead letters from real deliveries', async () => {
    const db = app.service.database.db;
    // Fails twice (500), then succeeds: two retries, after attempts 1 and 2.
    let flaky = 0;
    receiver.respond((_index, request) =>
      request.path === '/flaky' && flaky++ < 2
        ? { kind: 'status', status: 500 }
        : { kind: 'status', status: 200 },
    );
    const token = await app.token('metrics-tenant');
    const hook = await app.call('POST', '/webhooks', {
      token,
      body: { url: `${receiver.url}/flaky`, event_types: ['order.*'] },
    });
    expect(hook.status).toBe(201);
    const event = await app.call('POST', '/events', {
      token,
      body: { type: 'order.created', payload: { n: 1 } },
    });
    expect(event.status).toBe(202);
    // A destination the API would refuse, written straight into the table: refused at delivery.
    const blocked = await queueDelivery(db, { url: 'http://10.0.0.1/hook' });

    const samples = await waitFor(
      async () => {
        const now = await scrape(app.url);
        return (valueOf(now, 'webhook_deliveries_total', { outcome: 'success' }) ?? 0) >= 1 &&
          (valueOf(now, 'webhook_deliveries_total', { outcome: 'dead' }) ?? 0) >= 1
          ? now
          : undefined;
      },
      15_000,
      'a success and a dead letter in /metrics',
    );
    expect(valueOf(samples, 'webhook_events_ingested_total')).toBe(1);
    expect(valueOf(samples, 'webhook_deliveries_total', { outcome: 'success' })).toBe(1);
    expect(valueOf(samples, 'webhook_deliveries_total', { outcome: 'failure' })).toBe(2);
    expect(valueOf(samples, 'webhook_deliveries_total', { outcome: 'dead' })).toBe(1);
    expect(valueOf(samples, 'webhook_delivery_retries_total', { attempt: '1' })).toBe(1);
    expect(valueOf(samples, 'webhook_delivery_retries_total', { attempt: '2' })).toBe(1);
    expect(valueOf(samples, 'webhook_ssrf_blocked_total', { stage: 'literal' })).toBe(1);
    expect(valueOf(samples, 'webhook_event_to_delivery_seconds_count')).toBe(1);
    // Three attempts that reached the receiver; the refused one made no request and is not timed.
    expect(valueOf(samples, 'webhook_delivery_duration_seconds_count')).toBe(3);

    // The dead letter shows in dlq_size once the gauges are read again.
    await waitFor(
      async () => {
        await app.service.queueGauges.refresh();
        return valueOf(await scrape(app.url), 'dlq_size') === 1 ? true : undefined;
      },
      10_000,
      'dlq_size 1',
    );

    // No label value names a tenant, webhook, delivery, event or URL; routes are templates.
    await app.call('GET', `/webhooks/${hook.body.id}`, { token });
    await app.call('GET', `/deliveries/${event.body.delivery_ids[0]}`, { token });
    const after = await scrape(app.url);
    const identifying = [
      'metrics-tenant',
      blocked.tenantId,
      hook.body.id,
      blocked.webhookId,
      event.body.event_id,
      event.body.delivery_ids[0],
      blocked.deliveryId,
      receiver.url,
      '10.0.0.1',
    ];
    for (const sample of after) {
      for (const value of Object.values(sample.labels)) {
        for (const id of identifying) expect(value, `${sample.name} label`).not.toContain(id);
      }
    }
    const routes = new Set(
      after.filter((s) => s.name === 'http_request_duration_seconds_count').map((s) => s.labels.route),
    );
    expect(routes).toContain('/webhooks/:id');
    expect(routes).toContain('/deliveries/:id');
  });
});

describe('queue gauges', () => {
  it('count waiting delivery jobs (not locked ones), the oldest due job and the DLQ', async () => {
    // No workers: jobs stay where the test puts them.
    const app = await startTestService({ NUM_WORKERS: '0' });
    try {
      const db = app.service.database.db;
      const refreshAndScrape = async () => {
        await app.service.queueGauges.refresh();
        return scrape(app.url);
      };
      let samples = await refreshAndScrape();
      expect(valueOf(samples, 'webhook_queue_depth')).toBe(0);
      expect(valueOf(samples, 'webhook_queue_oldest_job_age_seconds')).toBe(0);
      expect(valueOf(samples, 'dlq_size')).toBe(0);

      const queued = [];
      for (let i = 0; i < 4; i++) queued.push(await queueDelivery(db, { url: 'http://127.0.0.1:9/x' }));
      // One job due 90 s ago, one due in an hour, one locked by a worker: 3 waiting, oldest 90 s.
      const jobKey = (deliveryId: string) => `delivery:${deliveryId}`;
      await sql`update graphile_worker._private_jobs set run_at = now() - interval '90 seconds'
                 where key = ${jobKey(queued[0]!.deliveryId)}`.execute(db);
      await sql`update graphile_worker._private_jobs set run_at = now() + interval '1 hour'
                 where key = ${jobKey(queued[1]!.deliveryId)}`.execute(db);
      await sql`update graphile_worker._private_jobs set locked_at = now(), locked_by = 'test'
                 where key = ${jobKey(queued[2]!.deliveryId)}`.execute(db);
      await sql`insert into dlq (delivery_id, tenant_id, webhook_id, event_id, last_error, attempts)
                values (${queued[3]!.deliveryId}, ${queued[3]!.tenantId}, ${queued[3]!.webhookId},
                        ${queued[3]!.eventId}, 'HTTP 500: Internal Server Error', 6)`.execute(db);

      samples = await refreshAndScrape();
      expect(valueOf(samples, 'webhook_queue_depth')).toBe(3);
      const age = valueOf(samples, 'webhook_queue_oldest_job_age_seconds')!;
      expect(age).toBeGreaterThanOrEqual(90);
      expect(age).toBeLessThan(120);
      expect(valueOf(samples, 'dlq_size')).toBe(1);
    } finally {
      await app.stop();
    }
  });

  it('reads 100 000 waiting jobs with one cheap statement (plan and time printed)', async () => {
    const database = await createTestDatabase();
    const handle = createDatabase(database.url, { max: 2 });
    try {
      const db = handle.db;
      await sql`
        select graphile_worker.add_jobs(array(
          select row('deliver', json_build_object('delivery_id', gen_random_uuid(), 'attempt', 1),
                     null, now() - make_interval(secs => i), 25, null, i % 1000, null
                 )::graphile_worker.job_spec
            from generate_series(1, 100000) as i))
      `.execute(db);
      await sql`update graphile_worker._private_jobs set locked_at = now(), locked_by = 'test'
                 where id in (select id from graphile_worker._private_jobs order by id limit 1000)`.execute(
        db,
      );
      await sql`vacuum analyze graphile_worker._private_jobs`.execute(db);

      const started = performance.now();
      const figures = await readQueueFigures(db);
      const elapsedMs = performance.now() - started;
      expect(figures.queueDepth).toBe(99_000);
      expect(figures.oldestDueAgeSeconds).toBeGreaterThan(99_000);
      expect(figures.dlqSize).toBe(0);

      const explain = async (trx: typeof db) => {
        const { rows } = await sql<{ 'QUERY PLAN': string }>`
          explain (analyze, buffers, costs off) ${queueFiguresQuery}
        `.execute(trx);
        return rows.map((row) => row['QUERY PLAN']).join('\n');
      };
      // With nearly every job waiting, PostgreSQL rightly prefers reading the table once; the
      // partial index of waiting jobs (which carries task_id and run_at) is the plan when few
      // are. Both are printed: the figure is what matters, not which plan.
      const chosen = await explain(db);
      const indexOnly = await db.transaction().execute(async (trx) => {
        await sql`set local enable_seqscan = off`.execute(trx);
        return explain(trx);
      });
      console.log(
        `queue gauges at 100 000 jobs (99 000 waiting): first read ${elapsedMs.toFixed(1)} ms\n` +
          `plan chosen:\n${chosen}\n\nplan without table scans:\n${indexOnly}`,
      );
      expect(indexOnly).toMatch(/Index (Only )?Scan using jobs_(main|no_queue)_index/);
    } finally {
      await handle.close();
      await database.drop();
    }
  }, 120_000);
});

describe('METRICS_PORT', () => {
  it('gives a ROLE=worker process a /metrics listener of its own', async () => {
    const worker = await startTestService({ ROLE: 'worker', METRICS_PORT: '0' });
    try {
      expect(worker.service.url).toBeUndefined();
      const port = worker.service.metricsPort!;
      expect(port).toBeGreaterThan(0);
      const samples = await scrape(`http://127.0.0.1:${port}`);
      expect(valueOf(samples, 'webhook_deliveries_total', { outcome: 'success' })).toBe(0);
      expect(valueOf(samples, 'webhook_queue_depth')).toBeDefined();
      expect(valueOf(samples, 'process_resident_memory_bytes')).toBeGreaterThan(0);
      const other = await fetch(`http://127.0.0.1:${port}/webhooks`);
      expect(other.status).toBe(404);
    } finally {
      await worker.stop();
    }
  });

  it('opens no extra port when unset', async () => {
    const worker = await startTestService({ ROLE: 'worker' });
    try {
      expect(worker.service.metricsPort).toBeUndefined();
      expect(worker.service.url).toBeUndefined();
    } finally {
      await worker.stop();
    }
  });
});
