/**
 * The delivery engine end to end: the real service (worker included) on a cloned database,
 * rows inserted with SQL, real receivers on 127.0.0.1.
 */
import { createHmac } from 'node:crypto';
import ipaddr from 'ipaddr.js';
import { sql } from 'kysely';
import { Webhook } from 'standardwebhooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase } from '../../src/db/database.js';
import { resumePausedDeliveries } from '../../src/webhooks/webhook-state.js';
import { createDeliveryEngine } from '../../src/delivery/deliver-batch.js';
import { USER_AGENT } from '../../src/delivery/delivery-request.js';
import { createHttpClient } from '../../src/delivery/http-client.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import {
  attemptRows,
  createDelivery,
  createEvent,
  deliveryRow,
  dlqRows,
  generateSecret,
  jobsOf,
  queueDelivery,
  waitForDeliveryStatus,
} from '../helpers/fixtures.js';
import { waitFor } from '../helpers/process.js';
import { receiverPool } from '../helpers/receiver.js';
import { startTestService, testSecretBox, type TestService } from '../helpers/service.js';

let svc: TestService;
const receivers = receiverPool();
const receiver = receivers.start;
const db = () => svc.service.database.db;

beforeAll(async () => {
  svc = await startTestService({ RETRY_SCHEDULE: '0.05,0.1', SSRF_ALLOWLIST: '127.0.0.1/32' });
});
afterEach(async () => {
  await receivers.closeAll();
});
afterAll(async () => {
  await svc?.stop();
});

describe('what a receiver gets', () => {
  it('a generated whsec_ secret: body and headers as the contract says, verified by standardwebhooks', async () => {
    const r = await receiver();
    const queued = await queueDelivery(db(), {
      url: `${r.url}/hooks?x=1`,
      type: 'invoice.paid',
      payload: { invoice: 'inv_1', amount: 1250, nested: { ok: true } },
    });
    await waitForDeliveryStatus(db(), queued.deliveryId, ['succeeded']);
    expect(r.requests).toHaveLength(1);
    const request = r.requests[0]!;
    expect(request.method).toBe('POST');
    expect(request.path).toBe('/hooks?x=1');
    expect(request.headers['content-type']).toBe('application/json');
    expect(request.headers['webhook-id']).toBe(queued.deliveryId);
    expect(request.headers['user-agent']).toBe(USER_AGENT);
    const timestamp = Number(request.headers['webhook-timestamp']);
    expect(Math.abs(timestamp - Date.now() / 1000)).toBeLessThan(10);
    expect(request.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);

    const verified = new Webhook(queued.secret).verify(
      request.body,
      request.headers as Record<string, string>,
    );
    expect(verified).toEqual({
      type: 'invoice.paid',
      timestamp: queued.event.createdAt.toISOString(),
      data: { invoice: 'inv_1', amount: 1250, nested: { ok: true } },
    });

    const [attempt] = await attemptRows(db(), queued.deliveryId);
    expect(attempt).toMatchObject({ attempt_number: 1, status_code: 200, error: null, response_body: 'ok' });
    const row = await deliveryRow(db(), queued.deliveryId);
    expect(row).toMatchObject({
      status: 'succeeded',
      attempt_count: 1,
      last_status_code: 200,
      last_error: null,
    });
    expect(row!.succeeded_at).toBeInstanceOf(Date);
  });

  it('a given plain secret: the signature is a plain HMAC-SHA256 over id.timestamp.body', async () => {
    const r = await receiver();
    const secret = 'plain-secret-given-by-the-user';
    const queued = await queueDelivery(db(), { url: r.url, secret });
    await waitForDeliveryStatus(db(), queued.deliveryId, ['succeeded']);
    const request = r.requests[0]!;
    const expected = createHmac('sha256', Buffer.from(secret, 'utf8'))
      .update(`${request.headers['webhook-id']}.${request.headers['webhook-timestamp']}.${request.body}`)
      .digest('base64');
    expect(request.headers['webhook-signature']).toBe(`v1,${expected}`);
  });

  it('during a rotation both signatures are sent; old and new secrets verify', async () => {
    const r = await receiver();
    const current = generateSecret();
    const previous = generateSecret();
    const queued = await queueDelivery(db(), {
      url: r.url,
      secret: current,
      previousSecret: previous,
      previousSecretExpiresAt: new Date(Date.now() + 3600_000),
    });
    await waitForDeliveryStatus(db(), queued.deliveryId, ['succeeded']);
    const request = r.requests[0]!;
    expect((request.headers['webhook-signature'] as string).split(' ')).toHaveLength(2);
    const headers = request.headers as Record<string, string>;
    expect(new Webhook(current).verify(request.body, headers)).toMatchObject({ type: 'order.created' });
    expect(new Webhook(previous).verify(request.body, headers)).toMatchObject({ type: 'order.created' });
    expect(() => new Webhook(generateSecret()).verify(request.body, headers)).toThrow();
  });
});

describe('the payload as sent', () => {
  it('data keeps the order of the keys the producer sent, on the first attempt and on a retry', async () => {
    const r = await receiver({
      behaviour: (index) => (index === 0 ? { kind: 'status', status: 500 } : { kind: 'status', status: 200 }),
    });
    const token = await svc.token('key-order');
    const created = await svc.call('POST', '/webhooks', { token, body: { url: r.url, event_types: ['*'] } });
    expect(created.status).toBe(201);
    // jsonb would answer {"a": .., "mm": .., "zeta": ..} and {"b": .., "yy": ..}: shorter keys first.
    const sent = '{"zeta":1,"a":{"yy":true,"b":[1,2]},"mm":"x"}';
    const posted = await svc.call('POST', '/events', {
      token,
      body: { type: 'order.created', payload: JSON.parse(sent) as unknown },
    });
    expect(posted.status).toBe(202);
    const [deliveryId] = posted.body.delivery_ids as string[];
    const row = await waitForDeliveryStatus(db(), deliveryId!, ['succeeded']);
    expect(row.attempt_count).toBe(2);
    expect(r.requests.map((q) => q.body.slice(q.body.indexOf('"data":') + 7, -1))).toEqual([sent, sent]);
    const shown = await svc.call('GET', `/events/${posted.body.event_id as string}`, { token });
    expect(JSON.stringify(shown.body.payload)).toBe(sent);
  });
});

describe('retries and the DLQ', () => {
  it('a receiver failing twice then succeeding gets three requests with one webhook-id, spaced by the schedule', async () => {
    const r = await receiver({
      behaviour: (index) =>
        index < 2 ? { kind: 'status', status: 500, body: 'boom' } : { kind: 'status', status: 200 },
    });
    const queued = await queueDelivery(db(), { url: r.url });
    const row = await waitForDeliveryStatus(db(), queued.deliveryId, ['succeeded']);
    expect(row.attempt_count).toBe(3);
    expect(r.requests).toHaveLength(3);
    expect(new Set(r.requests.map((q) => q.headers['webhook-id']))).toEqual(new Set([queued.deliveryId]));
    const gaps = [r.requests[1]!.at - r.requests[0]!.at, r.requests[2]!.at - r.requests[1]!.at];
    console.log(`retry gaps with schedule 0.05,0.1 s: ${gaps.join(' ms, ')} ms`);
    expect(gaps[0]).toBeGreaterThanOrEqual(50);
    expect(gaps[1]).toBeGreaterThanOrEqual(100);

    const attempts = await attemptRows(db(), queued.deliveryId);
    expect(attempts.map((a) => [a.attempt_number, a.status_code, a.error])).toEqual([
      [1, 500, 'HTTP 500: Internal Server Error'],
      [2, 500, 'HTTP 500: Internal Server Error'],
      [3, 200, null],
    ]);
    expect(await dlqRows(db(), queued.deliveryId)).toEqual([]);
    const { rows } = await sql<{ failing_since: Date | null }>`
      select failing_since from webhooks where id = ${queued.webhookId}
    `.execute(db());
    expect(rows[0]!.failing_since).toBeNull();
  });

  it('a receiver that always fails ends in the DLQ with attempts = 1 + retries and the last error', async () => {
    const r = await receiver({ behaviour: { kind: 'status', status: 503, body: 'down' } });
    const queued = await queueDelivery(db(), { url: r.url });
    const row = await waitForDeliveryStatus(db(), queued.deliveryId, ['dead']);
    expect(row).toMatchObject({
      attempt_count: 3,
      last_error: 'HTTP 503: Service Unavailable',
      last_status_code: 503,
      next_attempt_at: null,
    });
    expect(r.requests).toHaveLength(3);
    expect(await dlqRows(db(), queued.deliveryId)).toEqual([
      {
        delivery_id: queued.deliveryId,
        webhook_id: queued.webhookId,
        attempts: 3,
        last_error: 'HTTP 503: Service Unavailable',
      },
    ]);
    const { rows } = await sql<{ failing_since: Date | null; enabled: boolean }>`
      select failing_since, enabled from webhooks where id = ${queued.webhookId}
    `.execute(db());
    expect(rows[0]).toMatchObject({ enabled: true, failing_since: expect.any(Date) });
    const metrics = await svc.service.metrics.registry.metrics();
    expect(metrics).toMatch(/webhook_deliveries_total\{outcome="dead"\} [1-9]/);
    expect(metrics).toMatch(/webhook_delivery_retries_total\{attempt="2"\} [1-9]/);
  });

  it('a URL no request can be made to (edited by hand) is dead-lettered at once', async () => {
    const queued = await queueDelivery(db(), { url: 'ftp://example.com/hook' });
    await waitForDeliveryStatus(db(), queued.deliveryId, ['dead']);
    expect(await dlqRows(db(), queued.deliveryId)).toMatchObject([
      { attempts: 1, last_error: 'unsupported URL scheme ftp:' },
    ]);
  });

  it('honours Retry-After on a 429', async () => {
    const r = await receiver({
      behaviour: (index) =>
        index === 0
          ? { kind: 'status', status: 429, headers: { 'retry-after': '1' } }
          : { kind: 'status', status: 200 },
    });
    const queued = await queueDelivery(db(), { url: r.url });
    await waitForDeliveryStatus(db(), queued.deliveryId, ['succeeded']);
    const gap = r.requests[1]!.at - r.requests[0]!.at;
    console.log(`gap after 429 with Retry-After: 1 → ${gap} ms`);
    expect(gap).toBeGreaterThanOrEqual(1000);
    const [first] = await attemptRows(db(), queued.deliveryId);
    expect(first).toMatchObject({ status_code: 429, error: 'HTTP 429: Too Many Requests' });
    expect(first!.response_headers).toMatchObject({ 'retry-after': '1' });
  });
});

describe('410 Gone', () => {
  it('disables the webhook, pauses its deliveries without losing them, and re-enabling resumes them', async () => {
    let gone = true;
    const r = await receiver({
      behaviour: () =>
        gone ? { kind: 'status', status: 410, body: 'gone' } : { kind: 'status', status: 200 },
    });
    const first = await queueDelivery(db(), { url: r.url });
    await waitForDeliveryStatus(db(), first.deliveryId, ['paused']);
    const { rows } = await sql<{
      enabled: boolean;
      disabled_reason: string | null;
      disabled_at: Date | null;
    }>`
      select enabled, disabled_reason, disabled_at from webhooks where id = ${first.webhookId}
    `.execute(db());
    expect(rows[0]).toMatchObject({
      enabled: false,
      disabled_reason: '410 Gone from endpoint',
      disabled_at: expect.any(Date),
    });
    expect(await dlqRows(db(), first.deliveryId)).toEqual([]);
    const audit = await sql<{ action: string; actor: string }>`
      select action, actor from audit_log where object_id = ${first.webhookId}
    `.execute(db());
    expect(audit.rows).toEqual([{ action: 'webhook.disabled', actor: 'system' }]);

    // Another delivery to the disabled webhook waits too, without a request.
    const event = await createEvent(db(), { tenantId: first.tenantId });
    const second = await createDelivery(db(), {
      tenantId: first.tenantId,
      webhookId: first.webhookId,
      eventId: event.id,
    });
    await waitForDeliveryStatus(db(), second, ['paused']);
    expect(r.requests).toHaveLength(1);
    expect((await deliveryRow(db(), second))!.attempt_count).toBe(0);

    gone = false;
    await db()
      .transaction()
      .execute(async (trx) => {
        await sql`update webhooks set enabled = true, disabled_reason = null, disabled_at = null where id = ${first.webhookId}`.execute(
          trx,
        );
        expect(await resumePausedDeliveries(trx, first.webhookId)).toBe(2);
      });
    expect((await waitForDeliveryStatus(db(), first.deliveryId, ['succeeded'])).attempt_count).toBe(2);
    expect((await waitForDeliveryStatus(db(), second, ['succeeded'])).attempt_count).toBe(1);
    expect(r.requests).toHaveLength(3);
  });
});

describe('graceful stop', () => {
  it('lets a running delivery finish before the worker stops', async () => {
    const other = await startTestService({ RETRY_SCHEDULE: '600', NUM_WORKERS: '2' });
    try {
      const r = await receiver({ behaviour: { kind: 'status', status: 200, delayMs: 700 } });
      const queued = await queueDelivery(other.service.database.db, { url: r.url });
      await waitFor(() => (r.inFlight() > 0 ? true : undefined), 10_000, 'the request to arrive');
      // The request in flight holds a lease in a name this process's worker reports (for heartbeats).
      const [lease] = await sql<{ worker_id: string }>`
        select worker_id from delivery_leases where delivery_id = ${queued.deliveryId}
      `
        .execute(other.service.database.db)
        .then((result) => result.rows);
      expect(other.service.worker!.lockOwnerIds()).toContain(lease!.worker_id);
      await other.service.stop();
      const handle = createDatabase(other.database.url, { max: 1 });
      try {
        expect(await deliveryRow(handle.db, queued.deliveryId)).toMatchObject({
          status: 'succeeded',
          attempt_count: 1,
        });
      } finally {
        await handle.close();
      }
    } finally {
      await other.database.drop();
    }
  });

  it('records a request still running at the stop deadline as interrupted, and queues its next attempt at once', async () => {
    const other = await startTestService({
      RETRY_SCHEDULE: '600',
      NUM_WORKERS: '2',
      SHUTDOWN_TIMEOUT_MS: '300',
    });
    try {
      const r = await receiver({ behaviour: { kind: 'hold-open' } });
      const queued = await queueDelivery(other.service.database.db, { url: r.url, timeoutMs: 30_000 });
      await waitFor(() => (r.inFlight() > 0 ? true : undefined), 10_000, 'the request to arrive');
      const stopping = Date.now();
      await other.service.stop();
      console.log(`stop with a held request took ${Date.now() - stopping} ms (deadline 300 ms)`);
      const handle = createDatabase(other.database.url, { max: 2 });
      try {
        // The receiver saw the request, so the attempt log shows it; the next one is due now.
        expect(await deliveryRow(handle.db, queued.deliveryId)).toMatchObject({
          status: 'failed',
          attempt_count: 1,
          last_error: 'interrupted by shutdown',
        });
        const [interrupted, ...rest] = await attemptRows(handle.db, queued.deliveryId);
        expect(rest).toEqual([]);
        expect(interrupted).toMatchObject({
          attempt_number: 1,
          status_code: null,
          error: 'interrupted by shutdown',
        });
        expect(interrupted!.duration_ms).toBeGreaterThanOrEqual(250);
        expect(await sql`select * from delivery_leases`.execute(handle.db).then((q) => q.rows)).toEqual([]);
        const jobs = await jobsOf(handle.db, queued.deliveryId);
        expect(jobs).toHaveLength(1);
        expect(jobs[0]).toMatchObject({ payload: { attempt: 2 }, locked_at: null });
        expect(jobs[0]!.run_at.getTime()).toBeLessThanOrEqual(Date.now());
        // The next run of that job makes attempt 2.
        r.respond({ kind: 'status', status: 200 });
        const client = createHttpClient({ allowlist: [ipaddr.parseCIDR('127.0.0.1/32')] });
        try {
          const engine = createDeliveryEngine({
            config: { retryScheduleSeconds: [600], deliveryTimeoutMs: 5000, maxInFlight: 10 },
            leaseOwner: 'test-worker',
            db: handle.db,
            logger: createLogger('error'),
            metrics: createMetrics({ defaultMetrics: false }),
            httpClient: client,
            secrets: testSecretBox(),
          });
          const [job] = await sql<{ payload: unknown }>`
            select payload from graphile_worker._private_jobs where id = ${jobs[0]!.id}
          `
            .execute(handle.db)
            .then((q) => q.rows);
          expect(await engine.deliverBatch(job!.payload)).toEqual({
            sent: 1,
            deferred: 0,
            requeued: 0,
            skipped: 0,
          });
          await engine.idle();
          expect(await deliveryRow(handle.db, queued.deliveryId)).toMatchObject({
            status: 'succeeded',
            attempt_count: 2,
          });
        } finally {
          client.close();
        }
      } finally {
        await handle.close();
      }
    } finally {
      await other.database.drop();
    }
  });
});

describe('a delivery restarted while an attempt is in flight', () => {
  it('is not stranded: the old attempt is not recorded, and the new series is sent', async () => {
    // Attempt 1 fails; attempt 2 is held 1.5 s; the resend comes while it is in flight.
    const r = await receiver({
      behaviour: (index) =>
        index === 0
          ? { kind: 'status', status: 500 }
          : index === 1
            ? { kind: 'status', status: 200, delayMs: 1500 }
            : { kind: 'status', status: 200 },
    });
    const queued = await queueDelivery(db(), { url: r.url });
    await waitFor(
      () => (r.inFlight() === 1 && r.requests.length === 2 ? true : undefined),
      10_000,
      'attempt 2 in flight',
    );
    expect((await deliveryRow(db(), queued.deliveryId))!.status).toBe('failed');
    const token = await svc.token(queued.tenantId);
    const resent = await svc.call('POST', `/deliveries/${queued.deliveryId}/retry`, { token });
    expect(resent.status).toBe(202);
    // The new series' attempt 1 arrives once attempt 2 has ended and given its lease back.
    const done = await waitForDeliveryStatus(db(), queued.deliveryId, ['succeeded']);
    expect(done.attempt_count).toBe(1);
    expect(r.requests.map((q) => q.headers['webhook-id'])).toEqual([
      queued.deliveryId,
      queued.deliveryId,
      queued.deliveryId,
    ]);
    // Attempt 2 of the old series was not recorded: the log shows attempt 1 (500) and the new series' attempt 1.
    const attempts = await attemptRows(db(), queued.deliveryId);
    expect(attempts.map((a) => [a.attempt_number, a.status_code])).toEqual([
      [1, 500],
      [1, 200],
    ]);
  });
});

describe('ingestion in a delivering process', () => {
  it('leases new deliveries as it stores them and sends them without a job, up to MAX_IN_FLIGHT', async () => {
    const other = await startTestService({ MAX_IN_FLIGHT: '3', RETRY_SCHEDULE: '600' });
    try {
      // Answers after 2 s: what follows happens while the first requests are open.
      const r = await receiver({ behaviour: { kind: 'status', status: 200, delayMs: 2000 } });
      const token = await other.token('direct');
      const created = await other.call('POST', '/webhooks', {
        token,
        body: { url: r.url, event_types: ['*'] },
      });
      expect(created.status).toBe(201);
      const posted = await other.call('POST', '/events', {
        token,
        body: { type: 'order.created', payload: { n: 1 } },
      });
      expect(posted.status).toBe(202);
      const [deliveryId] = posted.body.delivery_ids as string[];
      const db = other.service.database.db;
      // Leased by this process in the storing statement: in flight at once, and no job names it.
      const [lease] = await sql<{ worker_id: string }>`
        select worker_id from delivery_leases where delivery_id = ${deliveryId}
      `
        .execute(db)
        .then((q) => q.rows);
      expect(other.service.worker!.lockOwnerIds()).toContain(lease!.worker_id);
      expect(await jobsOf(db, deliveryId!)).toEqual([]);
      await waitFor(() => (r.inFlight() === 1 ? true : undefined), 5000, 'the request to arrive');

      // Beyond MAX_IN_FLIGHT (3 open at most), new deliveries are queued as jobs instead.
      const more = await Promise.all(
        [2, 3, 4, 5].map((n) =>
          other.call('POST', '/events', { token, body: { type: 'order.created', payload: { n } } }),
        ),
      );
      const moreIds = more.map((res) => (res.body.delivery_ids as string[])[0]!);
      await waitFor(() => (r.inFlight() === 3 ? true : undefined), 5000, 'three requests open');
      const queued = await Promise.all(moreIds.map((id) => jobsOf(db, id)));
      expect(queued.filter((jobs) => jobs.length > 0).length).toBeGreaterThanOrEqual(2);
      expect(other.service.worker!.engine.inFlight()).toBe(3);

      for (const id of [deliveryId!, ...moreIds]) await waitForDeliveryStatus(db, id, ['succeeded']);
      expect(new Set(r.requests.map((q) => q.headers['webhook-id']))).toEqual(
        new Set([deliveryId, ...moreIds]),
      );
    } finally {
      await other.stop();
    }
  });
});
