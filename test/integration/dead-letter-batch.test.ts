/**
 * Deliveries that die together are dead-lettered together: one statement writes their DLQ rows
 * and tells, for each, whether its tenant's DLQ was full once it was in (as if written one after
 * another); one more stores their `hookrelay.delivery.dead` events. Before, each death took three
 * statements of its own inside the record transaction.
 */
import ipaddr from 'ipaddr.js';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDeliveryEngine } from '../../src/delivery/deliver-batch.js';
import { createHttpClient } from '../../src/delivery/http-client.js';
import { insertDeadLetters, type DeadLetter } from '../../src/dlq/dlq-repository.js';
import { emitOperationalEvents } from '../../src/events/operational-events.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { recordingStatements, withTestDatabase } from '../helpers/database.js';
import { seedDeadLetters, setQuota } from '../helpers/dead-letters.js';
import { createDelivery, createEvent, createTenant, createWebhook } from '../helpers/fixtures.js';
import { receiverPool } from '../helpers/receiver.js';
import { testSecretBox } from '../helpers/service.js';

let ctx: Awaited<ReturnType<typeof withTestDatabase>>;
const receivers = receiverPool();
beforeAll(async () => {
  ctx = await withTestDatabase();
});
afterAll(async () => {
  await receivers.closeAll();
  await ctx?.cleanup();
});
const db = () => ctx.handle.db;

/** Dead deliveries of one webhook, as the engine would hand them to insertDeadLetters. */
async function letters(tenantId: string, webhookId: string, count: number): Promise<DeadLetter[]> {
  return Promise.all(
    Array.from({ length: count }, async () => {
      const event = await createEvent(db(), { tenantId });
      const deliveryId = await createDelivery(db(), {
        tenantId,
        webhookId,
        eventId: event.id,
        enqueue: false,
      });
      return { deliveryId, tenantId, webhookId, eventId: event.id, lastError: 'HTTP 500', attempts: 3 };
    }),
  );
}

describe('insertDeadLetters', () => {
  it('writes every letter in one statement and says, letter by letter, when each tenant’s DLQ became full', async () => {
    const full = await createTenant(db());
    const roomy = await createTenant(db());
    const fullHook = await createWebhook(db(), { tenantId: full, url: 'https://full.example/hook' });
    const roomyHook = await createWebhook(db(), { tenantId: roomy, url: 'https://roomy.example/hook' });
    await setQuota(db(), full, { max_dlq_size: 5 });
    const seeded = await seedDeadLetters(db(), { tenantId: full, webhookId: fullHook.id, count: 2 });
    const [a1, a2, a3, a4] = await letters(full, fullHook.id, 4);
    const [b1, b2] = await letters(roomy, roomyHook.id, 2);
    // One of the seeded deliveries dies again: its row is refreshed, not counted twice.
    const again: DeadLetter = {
      deliveryId: seeded.deliveryIds[0]!,
      tenantId: full,
      webhookId: fullHook.id,
      eventId: seeded.eventIds[0]!,
      lastError: 'HTTP 502',
      attempts: 9,
    };

    const { db: recorded, statements } = recordingStatements(db());
    const outcomes = await insertDeadLetters(recorded, [a1!, b1!, again, a2!, a3!, b2!, a4!]);

    expect(statements).toHaveLength(1);
    // full: 2 seeded, then a1 → 3, again → 3, a2 → 4, a3 → 5 (full), a4 → 6.
    expect(outcomes).toEqual([
      { dlqFull: false, maxSize: 5 },
      { dlqFull: false, maxSize: 100 },
      { dlqFull: false, maxSize: 5 },
      { dlqFull: false, maxSize: 5 },
      { dlqFull: true, maxSize: 5 },
      { dlqFull: false, maxSize: 100 },
      { dlqFull: true, maxSize: 5 },
    ]);
    const { rows } = await sql<{ tenant_id: string; n: number }>`
      select tenant_id, count(*)::int as n from dlq where tenant_id in (${full}, ${roomy})
       group by tenant_id order by n desc
    `.execute(db());
    expect(rows).toEqual([
      { tenant_id: full, n: 6 },
      { tenant_id: roomy, n: 2 },
    ]);
    const refreshed = await sql<{ last_error: string; attempts: number }>`
      select last_error, attempts from dlq where delivery_id = ${again.deliveryId}
    `.execute(db());
    expect(refreshed.rows).toEqual([{ last_error: 'HTTP 502', attempts: 9 }]);
  });

  it('a DLQ already at its limit is full for the first new letter', async () => {
    const tenant = await createTenant(db());
    const hook = await createWebhook(db(), { tenantId: tenant, url: 'https://at-limit.example/hook' });
    await setQuota(db(), tenant, { max_dlq_size: 3 });
    await seedDeadLetters(db(), { tenantId: tenant, webhookId: hook.id, count: 3 });
    const outcomes = await insertDeadLetters(db(), await letters(tenant, hook.id, 2));
    expect(outcomes.map((o) => o.dlqFull)).toEqual([true, true]);
    expect(await insertDeadLetters(db(), [])).toEqual([]);
  });
});

describe('emitOperationalEvents', () => {
  it('stores many operational events in one statement and answers their ids in order', async () => {
    const tenant = await createTenant(db());
    const { db: recorded, statements } = recordingStatements(db());
    const ids = await emitOperationalEvents(
      recorded,
      [1, 2, 3].map((n) => ({
        tenantId: tenant,
        type: 'hookrelay.dlq.full' as const,
        payload: { webhook_id: `w-${n}`, delivery_id: `d-${n}`, max_dlq_size: n },
      })),
    );
    expect(statements).toHaveLength(1);
    const { rows } = await sql<{ id: string; type: string; n: number }>`
      select id, type, (payload->>'max_dlq_size')::int as n from events where tenant_id = ${tenant}
    `.execute(db());
    expect(ids.map((id) => rows.find((r) => r.id === id)?.n)).toEqual([1, 2, 3]);
    expect(new Set(rows.map((r) => r.type))).toEqual(new Set(['hookrelay.dlq.full']));
  });
});

describe('the delivery engine', () => {
  it('records 40 deaths with one dead-letter statement and one event statement per record batch', async () => {
    const receiver = await receivers.start({ behaviour: { kind: 'status', status: 500 } });
    const tenant = await createTenant(db());
    const hook = await createWebhook(db(), { tenantId: tenant, url: receiver.url });
    const dead = await letters(tenant, hook.id, 40);
    const { db: recorded, statements } = recordingStatements(db());
    const client = createHttpClient({ allowlist: [ipaddr.parseCIDR('127.0.0.1/32')] });
    const engine = createDeliveryEngine({
      // No retries: the first failure is the last.
      config: { retryScheduleSeconds: [], deliveryTimeoutMs: 5000, maxInFlight: 100 },
      leaseOwner: 'dead-letter-batch-test',
      db: recorded,
      logger: createLogger('error'),
      metrics: createMetrics({ defaultMetrics: false }),
      httpClient: client,
      secrets: testSecretBox(),
    });
    try {
      const outcome = await engine.deliverBatch({
        tenant_id: tenant,
        deliveries: dead.map((d) => ({ id: d.deliveryId, attempt: 1 })),
      });
      expect(outcome.sent).toBe(40);
      await engine.idle();
    } finally {
      client.close();
    }

    const { rows } = await sql<{ in_dlq: number; dead: number; announced: number }>`
      select (select count(*)::int from dlq where tenant_id = ${tenant}) as in_dlq,
             (select count(*)::int from deliveries where tenant_id = ${tenant} and status = 'dead') as dead,
             (select count(*)::int from events where tenant_id = ${tenant} and type = 'hookrelay.delivery.dead') as announced
    `.execute(db());
    expect(rows[0]).toEqual({ in_dlq: 40, dead: 40, announced: 40 });
    const count = (pattern: RegExp) => statements.filter((s) => pattern.test(s)).length;
    const recordBatches = count(/^-- prepared: record_attempts|insert into delivery_attempts/);
    expect(recordBatches).toBeGreaterThan(0);
    expect(count(/insert into dlq/)).toBe(recordBatches);
    expect(count(/emit_operational/)).toBe(recordBatches);
  });
});
