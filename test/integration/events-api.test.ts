import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { listAnswerSchema } from '../../src/http/common-schemas.js';
import { AppError } from '../../src/errors.js';
import {
  eventAcceptedSchema,
  eventDetailSchema,
  eventSummarySchema,
} from '../../src/events/event-schemas.js';
import { deliveryDetailSchema } from '../../src/delivery/delivery-schemas.js';
import { MAX_JOB_DELIVERIES } from '../../src/delivery/enqueue.js';
import { createIngestionService } from '../../src/events/ingestion-service.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { expectSchema } from '../helpers/schema.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
let acme: string;

beforeAll(async () => {
  // No workers: the jobs stay in the queue for the tests to look at.
  svc = await startTestService({ NUM_WORKERS: '0' });
  acme = await svc.token('acme');
});
afterAll(async () => {
  await svc?.stop();
});

const db = () => svc.service.database.db;

async function createWebhook(token: string, body: Record<string, unknown>): Promise<string> {
  const res = await svc.call('POST', '/webhooks', { token, body: { url: 'http://127.0.0.1:9/h', ...body } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id;
}

async function emit(token: string, body: unknown, headers: Record<string, string> = {}) {
  return svc.call('POST', '/events', { token, body, headers });
}

async function count(table: string, where = sql`true`): Promise<number> {
  const result = await sql<{
    n: number;
  }>`select count(*)::int as n from ${sql.table(table)} where ${where}`.execute(db());
  return result.rows[0]!.n;
}

interface QueuedJob {
  key: string | null;
  task_identifier: string;
  payload: { tenant_id: string; deliveries: { id: string; attempt: number }[] };
  priority: number;
  locked_at: Date | null;
  attempts: number;
  max_attempts: number;
  flags: Record<string, boolean> | null;
}

/** Every job naming any of these deliveries (the payload is in graphile-worker's private table only). */
async function jobsNaming(deliveryIds: string[]): Promise<QueuedJob[]> {
  const result = await sql<QueuedJob>`
    select j.key, t.identifier as task_identifier, j.payload, j.priority, j.locked_at, j.attempts,
           j.max_attempts, j.flags
    from graphile_worker._private_jobs j join graphile_worker._private_tasks t on t.id = j.task_id
    where exists (select 1 from json_array_elements(j.payload->'deliveries') e
                  where e->>'id' = any(${deliveryIds}::text[]))
  `.execute(db());
  return result.rows;
}

/**
 * The deliveries' jobs, checked: each delivery is named by exactly one job, at attempt 1, and
 * those jobs name nothing else; each is a waiting `deliver` job (no key, not locked, not tried)
 * of the tenant alone — its payload's tenant, its only flag, every delivery it names — with up
 * to MAX_JOB_DELIVERIES of them.
 */
async function expectQueuedInBatches(deliveryIds: string[], tenantId: string): Promise<QueuedJob[]> {
  const jobs = await jobsNaming(deliveryIds);
  const named = jobs.flatMap((job) => job.payload.deliveries.map((entry) => entry.id));
  expect(named.sort()).toEqual([...deliveryIds].sort());
  for (const job of jobs) {
    expect(job).toMatchObject({
      task_identifier: 'deliver',
      key: null,
      locked_at: null,
      attempts: 0,
      flags: { [`t:${tenantId}`]: true },
    });
    expect(Object.keys(job.flags!)).toEqual([`t:${tenantId}`]);
    expect(job.attempts).toBeLessThan(job.max_attempts);
    expect(job.payload.tenant_id).toBe(tenantId);
    expect(job.payload.deliveries.length).toBeGreaterThan(0);
    expect(job.payload.deliveries.length).toBeLessThanOrEqual(MAX_JOB_DELIVERIES);
    expect(job.payload.deliveries.every((entry) => entry.attempt === 1)).toBe(true);
  }
  const { rows: owners } = await sql<{ tenant_id: string }>`
    select distinct tenant_id from deliveries where id = any(${named}::uuid[])
  `.execute(db());
  expect(owners).toEqual([{ tenant_id: tenantId }]);
  return jobs;
}

const ingested = async () => (await svc.service.metrics.eventsIngested.get()).values[0]?.value ?? 0;

describe('POST /events, the contract example', () => {
  let tenant: string;
  let matching: string[];
  beforeAll(async () => {
    tenant = await svc.token('contract');
    matching = [
      await createWebhook(tenant, { event_types: ['invoice.paid'] }),
      await createWebhook(tenant, { event_types: ['invoice.*'] }),
      await createWebhook(tenant, { event_types: ['*'] }),
      await createWebhook(tenant, { event_types: ['user.created', 'invoice.paid'] }),
    ];
    await createWebhook(tenant, { event_types: ['invoice.created'] });
    await createWebhook(tenant, { event_types: ['invoice.paid.*'] });
    await createWebhook(tenant, { event_types: ['invoice.paid'], enabled: false });
    // Another tenant's webhook for the same type gets nothing.
    await createWebhook(acme, { event_types: ['invoice.paid'] });
  });

  it('answers 202 with one delivery per matching enabled webhook, rows and jobs committed', async () => {
    const before = await ingested();
    const res = await emit(tenant, { type: 'invoice.paid', payload: { invoice_id: 'inv_1', amount: 4200 } });
    expect(res.status).toBe(202);
    expectSchema(eventAcceptedSchema, res.body);
    expect(res.body.webhooks_queued).toBe(4);
    expect(res.body.delivery_ids).toHaveLength(4);

    // Right after the answer, from another connection: everything is there.
    const event = await db()
      .selectFrom('events')
      .selectAll()
      .where('id', '=', res.body.event_id)
      .executeTakeFirst();
    expect(event).toMatchObject({
      tenant_id: 'contract',
      type: 'invoice.paid',
      payload: { invoice_id: 'inv_1', amount: 4200 },
    });
    const deliveries = await db()
      .selectFrom('deliveries')
      .selectAll()
      .where('event_id', '=', res.body.event_id)
      .execute();
    expect(deliveries.map((d) => d.webhook_id).sort()).toEqual([...matching].sort());
    expect(deliveries.map((d) => d.id).sort()).toEqual([...res.body.delivery_ids].sort());
    expect(
      deliveries.every((d) => d.status === 'pending' && d.attempt_count === 0 && d.tenant_id === 'contract'),
    ).toBe(true);

    // One tenant's four deliveries of one request: one job. Its fair rank: the tenant had
    // nothing waiting, so it takes place 0.
    const jobs = await expectQueuedInBatches(res.body.delivery_ids, 'contract');
    expect(jobs).toHaveLength(1);
    expect(jobs[0]!.priority).toBe(0);
    expect(await ingested()).toBe(before + 1);
  });

  it('an event that matches nothing is stored and answers webhooks_queued 0', async () => {
    const res = await emit(await svc.token('unheard'), { type: 'nothing.listens', payload: {} });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ webhooks_queued: 0, delivery_ids: [] });
    expect(await count('events', sql`id = ${res.body.event_id}`)).toBe(1);
  });

  it('prefix filters match deeper levels, not the prefix itself', async () => {
    const t = await svc.token('prefixes');
    const deep = await createWebhook(t, { event_types: ['a.*'] });
    const exactA = await createWebhook(t, { event_types: ['a'] });
    const res1 = await emit(t, { type: 'a.b.c', payload: {} });
    const res2 = await emit(t, { type: 'a', payload: {} });
    const webhooksOf = async (eventId: string) =>
      (
        await db().selectFrom('deliveries').select('webhook_id').where('event_id', '=', eventId).execute()
      ).map((d) => d.webhook_id);
    expect(await webhooksOf(res1.body.event_id)).toEqual([deep]);
    expect(await webhooksOf(res2.body.event_id)).toEqual([exactA]);
  });
});

describe('atomicity', () => {
  it('a job insert that fails leaves no event, delivery or idempotency key behind', async () => {
    const tenant = await svc.token('atomic');
    await createWebhook(tenant, { event_types: ['*'] });
    await createWebhook(tenant, { event_types: ['*'] });
    const events = await count('events');
    const deliveries = await count('deliveries');
    // The job insert is the last of the three; refuse it.
    await sql`alter table graphile_worker._private_jobs add constraint refuse_all check (false) not valid`.execute(
      db(),
    );
    try {
      const plain = await emit(tenant, { type: 'x.y', payload: { n: 1 } });
      expect(plain.status).toBe(500);
      expect(plain.body).toEqual({ error: { code: 'internal_error', message: expect.any(String) } });
      const keyed = await emit(tenant, { type: 'x.y', payload: { n: 2 } }, { 'idempotency-key': 'atomic-1' });
      expect(keyed.status).toBe(500);
      // Several at once go through the shared transaction, and its one-by-one fallback.
      const many = await Promise.all(
        Array.from({ length: 10 }, (_, n) => emit(tenant, { type: 'x.y', payload: { n } })),
      );
      expect(many.map((r) => r.status)).toEqual(Array(10).fill(500));
      expect(await count('events')).toBe(events);
      expect(await count('deliveries')).toBe(deliveries);
      expect(await count('idempotency_keys', sql`tenant_id = 'atomic'`)).toBe(0);
    } finally {
      await sql`alter table graphile_worker._private_jobs drop constraint refuse_all`.execute(db());
    }
    const after = await emit(tenant, { type: 'x.y', payload: {} }, { 'idempotency-key': 'atomic-1' });
    expect(after.status).toBe(202);
    expect(after.body.webhooks_queued).toBe(2);
    expect(await count('events')).toBe(events + 1);
  });
});

describe('group commit', () => {
  it('many concurrent requests are each answered with their own committed event', async () => {
    const tenant = await svc.token('burst');
    await createWebhook(tenant, { event_types: ['burst.*'] });
    await createWebhook(tenant, { event_types: ['burst.even'] });
    // Above the default 100 events/s, so that the limit does not refuse any of the burst.
    await sql`update quotas set max_events_per_sec = 10000 where tenant_id = 'burst'`.execute(db());
    const before = await ingested();
    const n = 120;
    const responses = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        emit(tenant, { type: i % 2 === 0 ? 'burst.even' : 'burst.odd', payload: { i } }),
      ),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(n).fill(202));
    responses.forEach((r, i) => expect(r.body.webhooks_queued).toBe(i % 2 === 0 ? 2 : 1));
    const eventIds = responses.map((r) => r.body.event_id);
    expect(new Set(eventIds).size).toBe(n);
    const stored = await db()
      .selectFrom('events')
      .select(['id', 'payload'])
      .where('tenant_id', '=', 'burst')
      .execute();
    const payloadById = new Map(stored.map((e) => [e.id, e.payload]));
    responses.forEach((r, i) => expect(payloadById.get(r.body.event_id)).toEqual({ i }));
    expect(await count('deliveries', sql`tenant_id = 'burst'`)).toBe(n + n / 2);
    const deliveryIds: string[] = responses.flatMap((r) => r.body.delivery_ids);
    expect(deliveryIds).toHaveLength(n + n / 2);
    await expectQueuedInBatches(deliveryIds, 'burst');
    expect(await ingested()).toBe(before + n);
  });

  it('a request PostgreSQL cannot store fails alone (400); its neighbours commit', async () => {
    const tenant = await svc.token('neighbours');
    await createWebhook(tenant, { event_types: ['*'] });
    const bad = '{"type":"n.bad","payload":{"text":"\\ud800 marker-text"}}';
    const nul = '{"type":"n.bad","payload":{"text":"\\u0000"}}';
    const responses = await Promise.all([
      ...Array.from({ length: 10 }, (_, i) => emit(tenant, { type: 'n.good', payload: { i } })),
      emit(tenant, bad),
      emit(tenant, nul),
    ]);
    expect(responses.map((r) => r.status)).toEqual([...Array(10).fill(202), 400, 400]);
    expect(responses[10]!.body.error).toMatchObject({
      code: 'invalid_request',
      details: [{ field: '/payload', message: expect.any(String) }],
    });
    expect(JSON.stringify(responses[10]!.body)).not.toContain('marker-text');
    expect(await count('events', sql`tenant_id = 'neighbours'`)).toBe(10);
    expect(await count('deliveries', sql`tenant_id = 'neighbours'`)).toBe(10);
  });

  it('a shared transaction that fails is retried request by request', async () => {
    const batches: { size: number; fellBack: boolean }[] = [];
    const ingestion = createIngestionService({
      db: db(),
      metrics: createMetrics({ defaultMetrics: false }),
      logger: createLogger('error'),
      // A long gathering window so that the three requests below surely share one batch.
      batching: { maxWaitMs: 200 },
      onBatch: (r) => batches.push({ size: r.size, fellBack: r.fellBack }),
    });
    const outcomes = await Promise.allSettled([
      ingestion.ingest({ tenantId: 'direct', type: 'd.one', payload: { n: 1 } }),
      ingestion.ingest({ tenantId: 'direct', type: 'd.two', payload: { text: 'nul \u0000 here' } }),
      ingestion.ingest({ tenantId: 'direct', type: 'd.three', payload: { n: 3 } }),
    ]);
    expect(batches).toEqual([{ size: 3, fellBack: true }]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    const reason = (outcomes[1] as PromiseRejectedResult).reason;
    expect(reason).toBeInstanceOf(AppError);
    expect(reason.code).toBe('invalid_request');
    const types = await db()
      .selectFrom('events')
      .select('type')
      .where('tenant_id', '=', 'direct')
      .orderBy('type')
      .execute();
    expect(types.map((e) => e.type)).toEqual(['d.one', 'd.three']);
  });
});

describe('Idempotency-Key', () => {
  it('the same key from the same tenant answers the first answer and creates nothing', async () => {
    const tenant = await svc.token('idem');
    await createWebhook(tenant, { event_types: ['*'] });
    const first = await emit(tenant, { type: 'i.one', payload: { n: 1 } }, { 'idempotency-key': 'key-1' });
    expect(first.status).toBe(202);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    const again = await emit(tenant, { type: 'i.one', payload: { n: 1 } }, { 'idempotency-key': 'key-1' });
    expect(again.status).toBe(202);
    expect(again.body).toEqual(first.body);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await count('events', sql`tenant_id = 'idem'`)).toBe(1);
    expect(await count('deliveries', sql`tenant_id = 'idem'`)).toBe(1);
    const stored = await db()
      .selectFrom('events')
      .select('idempotency_key')
      .where('id', '=', first.body.event_id)
      .executeTakeFirst();
    expect(stored?.idempotency_key).toBe('key-1');

    // Another tenant's same key is its own.
    const other = await emit(
      await svc.token('idem-other'),
      { type: 'i.one', payload: {} },
      { 'idempotency-key': 'key-1' },
    );
    expect(other.body.event_id).not.toBe(first.body.event_id);
  });

  it('concurrent requests with one key create exactly one event', async () => {
    const tenant = await svc.token('race');
    await createWebhook(tenant, { event_types: ['*'] });
    await createWebhook(tenant, { event_types: ['r.*'] });
    const responses = await Promise.all(
      Array.from({ length: 25 }, () =>
        emit(tenant, { type: 'r.x', payload: { same: true } }, { 'idempotency-key': 'race-key' }),
      ),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(25).fill(202));
    const answers = new Set(responses.map((r) => JSON.stringify(r.body)));
    expect(answers.size).toBe(1);
    expect(responses[0]!.body.webhooks_queued).toBe(2);
    expect(responses.filter((r) => r.headers.get('idempotent-replayed') === 'true')).toHaveLength(24);
    expect(await count('events', sql`tenant_id = 'race'`)).toBe(1);
    expect(await count('deliveries', sql`tenant_id = 'race'`)).toBe(2);
  });

  it('a key older than 24 h counts as new', async () => {
    const tenant = await svc.token('stale');
    const first = await emit(tenant, { type: 's', payload: {} }, { 'idempotency-key': 'old' });
    await sql`update idempotency_keys set created_at = now() - interval '25 hours' where tenant_id = 'stale'`.execute(
      db(),
    );
    const second = await emit(tenant, { type: 's', payload: {} }, { 'idempotency-key': 'old' });
    expect(second.status).toBe(202);
    expect(second.body.event_id).not.toBe(first.body.event_id);
    const third = await emit(tenant, { type: 's', payload: {} }, { 'idempotency-key': 'old' });
    expect(third.body.event_id).toBe(second.body.event_id);
    expect(await count('events', sql`tenant_id = 'stale'`)).toBe(2);
  });

  it('a key of 255 characters is fine; 256 or empty is a 400', async () => {
    const tenant = await svc.token('keylen');
    expect(
      (await emit(tenant, { type: 'k', payload: {} }, { 'idempotency-key': 'k'.repeat(255) })).status,
    ).toBe(202);
    const long = await emit(tenant, { type: 'k', payload: {} }, { 'idempotency-key': 'k'.repeat(256) });
    expect(long.status).toBe(400);
    expect(long.body.error.details).toEqual([{ field: 'Idempotency-Key', message: expect.any(String) }]);
    expect((await emit(tenant, { type: 'k', payload: {} }, { 'idempotency-key': '' })).status).toBe(400);
    expect(await count('events', sql`tenant_id = 'keylen'`)).toBe(1);
  });
});

describe('reading events and deliveries', () => {
  let tenant: string;
  let webhookId: string;
  const eventIds: string[] = [];
  beforeAll(async () => {
    tenant = await svc.token('reader');
    webhookId = await createWebhook(tenant, { event_types: ['order.*'] });
    for (const type of ['order.created', 'order.paid', 'order.created', 'other']) {
      const res = await emit(tenant, { type, payload: { type } });
      eventIds.push(res.body.event_id);
    }
  });

  it('GET /events/:id shows the event, its payload and its deliveries', async () => {
    const res = await svc.call('GET', `/events/${eventIds[1]}`, { token: tenant });
    expect(res.status).toBe(200);
    expectSchema(eventDetailSchema, res.body);
    expect(res.body).toMatchObject({
      id: eventIds[1],
      tenant_id: 'reader',
      type: 'order.paid',
      payload: { type: 'order.paid' },
    });
    expect(res.body.deliveries).toEqual([
      expect.objectContaining({
        webhook_id: webhookId,
        status: 'pending',
        attempt_count: 0,
        event_id: eventIds[1],
      }),
    ]);
  });

  it('GET /events lists newest first, filters by type and since, and pages', async () => {
    const all = await svc.call('GET', '/events', { token: tenant });
    expect(all.status).toBe(200);
    expectSchema(listAnswerSchema(eventSummarySchema), all.body);
    expect(all.body).toMatchObject({ total: 4, limit: 50, offset: 0 });
    expect(all.body.entries.map((e: any) => e.id).sort()).toEqual([...eventIds].sort());
    const times = all.body.entries.map((e: any) => Date.parse(e.created_at));
    expect(times).toEqual([...times].sort((a: number, b: number) => b - a));
    expect(all.body.entries[0]).not.toHaveProperty('payload');

    const created = await svc.call('GET', '/events?type=order.created', { token: tenant });
    expect(created.body.total).toBe(2);
    expect(created.body.entries.every((e: any) => e.type === 'order.created')).toBe(true);

    const page = await svc.call('GET', '/events?limit=1&offset=1', { token: tenant });
    expect(page.body).toMatchObject({ total: 4, limit: 1, offset: 1 });
    expect(page.body.entries[0].id).toBe(all.body.entries[1].id);

    const future = new Date(Date.now() + 3600_000).toISOString();
    expect((await svc.call('GET', `/events?since=${future}`, { token: tenant })).body.total).toBe(0);
    const past = new Date(Date.now() - 3600_000).toISOString();
    expect((await svc.call('GET', `/events?since=${past}`, { token: tenant })).body.total).toBe(4);

    expect((await svc.call('GET', '/events?limit=501', { token: tenant })).status).toBe(400);
    expect((await svc.call('GET', '/events?since=yesterday', { token: tenant })).status).toBe(400);
    expect((await svc.call('GET', '/events?type=has%20space', { token: tenant })).status).toBe(400);
  });

  it('GET /deliveries/:id shows every attempt in time order', async () => {
    const event = await svc.call('GET', `/events/${eventIds[0]}`, { token: tenant });
    const deliveryId = event.body.deliveries[0].id;
    // What the delivery engine writes; inserted out of order on purpose.
    await sql`
      insert into delivery_attempts (delivery_id, attempt_number, attempted_at, status_code, error, duration_ms, response_body)
      values
        (${deliveryId}, 2, now() - interval '1 minute', null, 'timeout after 10000 ms', 10000, null),
        (${deliveryId}, 1, now() - interval '2 minutes', 503, 'HTTP 503: Service Unavailable', 12, 'busy'),
        (${deliveryId}, 3, now(), 200, null, 8, 'ok')
    `.execute(db());
    const res = await svc.call('GET', `/deliveries/${deliveryId}`, { token: tenant });
    expect(res.status).toBe(200);
    expectSchema(deliveryDetailSchema, res.body);
    expect(res.body).toMatchObject({
      id: deliveryId,
      event_id: eventIds[0],
      webhook_id: webhookId,
      status: 'pending',
    });
    expect(
      res.body.attempts.map((a: any) => [
        a.attempt_number,
        a.status_code,
        a.error,
        a.duration_ms,
        a.response_body,
      ]),
    ).toEqual([
      [1, 503, 'HTTP 503: Service Unavailable', 12, 'busy'],
      [2, null, 'timeout after 10000 ms', 10000, null],
      [3, 200, null, 8, 'ok'],
    ]);
    expect(
      (await svc.call('GET', '/deliveries/00000000-0000-4000-8000-000000000000', { token: tenant })).status,
    ).toBe(404);
  });
});
