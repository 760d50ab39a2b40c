/**
 * GET /metrics of a real service: the contract's metric names, the gauges read from the
 * database (queue depth, oldest due job, DLQ size), counters moved by real deliveries (retries
 * by attempt, SSRF blocks, outcomes), no label value that names a tenant, webhook, delivery or
 * URL, and the METRICS_PORT listener of a ROLE=worker process. Also the gauge query at 100 000
 * waiting deliveries: its plan and time are printed, its figures checked.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase } from '../../src/db/database.js';
import { queueFiguresQuery, readQueueFigures } from '../../src/observability/queue-gauges.js';
import { createTestDatabase } from '../helpers/database.js';
import { jobsOf, queueDelivery, queueMany } from '../helpers/fixtures.js';
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
    // Refused before any route (no token), and matching none: named so, never by a pattern.
    expect((await app.call('GET', '/webhooks')).status).toBe(401);
    expect((await app.call('GET', '/no-such-route', { token })).status).toBe(404);
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
    expect(routes).toContain('unauthenticated');
    expect(routes).toContain('unmatched');
    for (const route of routes) expect(route).toMatch(/^(\/[\w:/-]*|unauthenticated|unmatched)$/);
  });
});

describe('queue gauges', () => {
  it('count deliveries waiting to be sent (not in flight), the oldest due job (not locked ones) and the DLQ', async () => {
    // No workers: rows and jobs stay where the test puts them.
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
      for (let i = 0; i < 6; i++) queued.push(await queueDelivery(db, { url: 'http://127.0.0.1:9/x' }));
      const jobOf = async (deliveryId: string) => (await jobsOf(db, deliveryId))[0]!.id;
      const setJob = async (deliveryId: string, change: ReturnType<typeof sql>) =>
        sql`update graphile_worker._private_jobs set ${change} where id = ${await jobOf(deliveryId)}`.execute(
          db,
        );
      const setDelivery = (deliveryId: string, change: ReturnType<typeof sql>) =>
        sql`update deliveries set ${change} where id = ${deliveryId}`.execute(db);
      const [due, retryLater, inFlight, dead, loading, paused] = queued.map((q) => q!);
      // Waiting: one due 90 s ago; one failed with its retry in an hour; one whose job a worker
      // has locked, due 5 minutes ago (its delivery waits, but a locked job is no waiting job).
      await setJob(due!.deliveryId, sql`run_at = now() - interval '90 seconds'`);
      await setDelivery(
        retryLater!.deliveryId,
        sql`status = 'failed', attempt_count = 1, next_attempt_at = now() + interval '1 hour'`,
      );
      await setJob(retryLater!.deliveryId, sql`run_at = now() + interval '1 hour'`);
      await setJob(
        loading!.deliveryId,
        sql`run_at = now() - interval '5 minutes', locked_at = now(), locked_by = 'test'`,
      );
      // Not waiting: one in flight (its lease taken, its job done), one dead in the DLQ, one paused.
      await sql`insert into delivery_leases (delivery_id, tenant_id, worker_id)
                values (${inFlight!.deliveryId}, ${inFlight!.tenantId}, 'test')`.execute(db);
      await setDelivery(dead!.deliveryId, sql`status = 'dead', attempt_count = 6`);
      await sql`insert into dlq (delivery_id, tenant_id, webhook_id, event_id, last_error, attempts)
                values (${dead!.deliveryId}, ${dead!.tenantId}, ${dead!.webhookId},
                        ${dead!.eventId}, 'HTTP 500: Internal Server Error', 6)`.execute(db);
      await setDelivery(paused!.deliveryId, sql`status = 'paused'`);
      for (const gone of [inFlight!, dead!, paused!]) {
        await sql`delete from graphile_worker._private_jobs where id = ${await jobOf(gone.deliveryId)}`.execute(
          db,
        );
      }
      // Deliveries, not jobs: one job naming five waiting deliveries counts five.
      const batch = await queueMany(db, due!.tenantId, due!.webhookId, 5);
      expect(new Set(await Promise.all(batch.map(jobOf))).size).toBe(1);

      samples = await refreshAndScrape();
      expect(valueOf(samples, 'webhook_queue_depth')).toBe(3 + 5);
      const age = valueOf(samples, 'webhook_queue_oldest_job_age_seconds')!;
      expect(age).toBeGreaterThanOrEqual(90);
      expect(age).toBeLessThan(120);
      expect(valueOf(samples, 'dlq_size')).toBe(1);
    } finally {
      await app.stop();
    }
  });

  it('reads 100 000 waiting deliveries among 300 000 with one cheap statement (plan and time printed)', async () => {
    const database = await createTestDatabase();
    const handle = createDatabase(database.url, { max: 2 });
    try {
      const db = handle.db;
      // 20 tenants, a webhook and an event each. Deliveries: 100 000 waiting (90 000 pending,
      // 10 000 failed with a retry scheduled), 1 000 of them in flight (leased); and 200 000
      // finished or paused, the history the depth must not read.
      await sql`
        with t as (
          insert into tenants (id) select 't-' || i from generate_series(1, 20) i returning id
        ), w as (
          insert into webhooks (id, tenant_id, url, event_types, secret)
          select gen_random_uuid(), id, 'https://hooks.example.test/in', '{*}', 'whsec_x' from t
          returning id, tenant_id
        ), e as (
          insert into events (id, tenant_id, type, payload)
          select gen_random_uuid(), tenant_id, 'order.created', '{}' from w
          returning id, tenant_id
        )
        insert into deliveries (id, event_id, webhook_id, tenant_id, status, attempt_count, next_attempt_at)
        select gen_random_uuid(), e.id, w.id, w.tenant_id,
               case when i <= 90000 then 'pending' when i <= 100000 then 'failed'
                    when i <= 290000 then 'succeeded' when i <= 295000 then 'dead' else 'paused' end,
               case when i <= 90000 then 0 else 1 end,
               case when i > 90000 and i <= 100000 then now() + interval '1 minute' end
          from generate_series(1, 300000) i
          join w on w.tenant_id = 't-' || (i % 20 + 1)
          join e on e.tenant_id = w.tenant_id
      `.execute(db);
      await sql`
        insert into delivery_leases (delivery_id, tenant_id, worker_id)
        select id, tenant_id, 'test' from deliveries where status = 'pending' limit 1000
      `.execute(db);
      // A job for every waiting delivery (the most jobs there can be: one delivery each), due
      // over the last 100 000 s; 1 000 locked by a worker (the newest, so the oldest stays).
      await sql`
        select graphile_worker.add_jobs(array(
          select row('deliver',
                     json_build_object('tenant_id', d.tenant_id, 'deliveries',
                       json_build_array(json_build_object('id', d.id, 'attempt', d.attempt_count + 1))),
                     null, now() - make_interval(secs => d.i), 25, null, d.i % 100, array['t:' || d.tenant_id]
                 )::graphile_worker.job_spec
            from (select id, tenant_id, attempt_count, row_number() over (order by id) as i
                    from deliveries where status in ('pending', 'failed')) d))
      `.execute(db);
      await sql`update graphile_worker._private_jobs set locked_at = now(), locked_by = 'test'
                 where id in (select id from graphile_worker._private_jobs order by run_at desc limit 1000)`.execute(
        db,
      );
      await sql`vacuum analyze deliveries, delivery_leases, graphile_worker._private_jobs`.execute(db);

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
      // The depth reads the waiting deliveries through the (tenant_id, status) index, never the
      // finished ones. With nearly every job waiting, PostgreSQL rightly prefers reading the
      // jobs table once; the partial index of waiting jobs is the plan when few are. Both are
      // printed: the figures are what matters, and that no plan reads the deliveries table.
      const chosen = await explain(db);
      const indexOnly = await db.transaction().execute(async (trx) => {
        await sql`set local enable_seqscan = off`.execute(trx);
        return explain(trx);
      });
      console.log(
        `queue gauges at 100 000 waiting deliveries of 300 000 (1 000 leased), one job each (1 000 locked): ` +
          `first read ${elapsedMs.toFixed(1)} ms\n` +
          `plan chosen:\n${chosen}\n\nplan without table scans:\n${indexOnly}`,
      );
      expect(chosen).toMatch(/Index Only Scan using deliveries_tenant_status_idx on deliveries/);
      expect(chosen).not.toMatch(/Seq Scan on deliveries/);
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
