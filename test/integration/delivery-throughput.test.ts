/**
 * A quick throughput figure (printed, not asserted): N deliveries queued at once to a fast
 * local receiver, all delivered exactly once.
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { enqueueDeliveries } from '../../src/delivery/enqueue.js';
import { createEvent, createTenant, createWebhook } from '../helpers/fixtures.js';
import { waitFor } from '../helpers/process.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { startTestService, type TestService } from '../helpers/service.js';

const COUNT = Number(process.env.DELIVERY_THROUGHPUT_COUNT ?? 1000);
let svc: TestService;
let r: Receiver;

beforeAll(async () => {
  svc = await startTestService({ NUM_WORKERS: '10', DATABASE_POOL_SIZE: '20' });
  r = await startReceiver();
});
afterAll(async () => {
  await r?.close();
  await svc?.stop();
});

it(`delivers ${COUNT} queued deliveries, each once`, async () => {
  const db = svc.service.database.db;
  const tenantId = await createTenant(db);
  const webhook = await createWebhook(db, { tenantId, url: `${r.url}/hook` });
  const event = await createEvent(db, { tenantId });
  const ids = Array.from({ length: COUNT }, () => randomUUID());
  const started = Date.now();
  await db.transaction().execute(async (trx) => {
    await sql`
      insert into deliveries (id, event_id, webhook_id, tenant_id)
      select id, ${event.id}, ${webhook.id}, ${tenantId} from unnest(${ids}::uuid[]) as id
    `.execute(trx);
    await enqueueDeliveries(
      trx,
      ids.map((deliveryId) => ({ deliveryId, attempt: 1 })),
    );
  });
  await waitFor(() => (r.requests.length >= COUNT ? true : undefined), 120_000, `${COUNT} requests`);
  const elapsed = (Date.now() - started) / 1000;
  const { rows } = await sql<{ succeeded: number }>`
    select count(*)::int as succeeded from deliveries where webhook_id = ${webhook.id} and status = 'succeeded'
  `.execute(db);
  await waitFor(
    async () => {
      const { rows: now } = await sql<{ succeeded: number }>`
        select count(*)::int as succeeded from deliveries where webhook_id = ${webhook.id} and status = 'succeeded'
      `.execute(db);
      return now[0]!.succeeded === COUNT ? true : undefined;
    },
    30_000,
    'all deliveries to be recorded',
  );
  console.log(
    `throughput: ${COUNT} deliveries in ${elapsed.toFixed(2)} s = ${(COUNT / elapsed).toFixed(0)}/s ` +
      `(NUM_WORKERS=10, one receiver on 127.0.0.1, ${r.connections()} connections opened, ` +
      `${rows[0]!.succeeded} recorded when the last request arrived)`,
  );
  expect(new Set(r.requests.map((q) => q.headers['webhook-id'])).size).toBe(COUNT);
  expect(r.requests).toHaveLength(COUNT);
});
