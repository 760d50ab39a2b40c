/**
 * The FIFO sweep: a FIFO webhook's first waiting delivery that nothing carries (no job, no
 * lease) is queued again; the ones behind it are left to wait.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { queueStalledFifoHeads } from '../../src/delivery/fifo.js';
import { withTestDatabase } from '../helpers/database.js';
import { createEvent, createTenant, createWebhook, jobsOf } from '../helpers/fixtures.js';

let ctx: Awaited<ReturnType<typeof withTestDatabase>>;
beforeAll(async () => {
  ctx = await withTestDatabase();
});
afterAll(async () => {
  await ctx?.cleanup();
});

it('queues the head of a FIFO webhook that nothing carries, once it has waited long enough', async () => {
  const db = ctx.handle.db;
  const tenantId = await createTenant(db);
  const webhook = await createWebhook(db, { tenantId, url: 'http://127.0.0.1:9/h' });
  await sql`update webhooks set ordering = 'fifo' where id = ${webhook.id}`.execute(db);
  const event = await createEvent(db, { tenantId });
  const ids = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
  // #1 succeeded; #2 and #3 wait, with no job (as after a lost hand-over).
  await sql`
    insert into deliveries (id, event_id, webhook_id, tenant_id, fifo_seq, status, updated_at)
    values (${ids[0]}, ${event.id}, ${webhook.id}, ${tenantId}, 1, 'succeeded', now() - interval '1 minute'),
           (${ids[1]}, ${event.id}, ${webhook.id}, ${tenantId}, 2, 'pending', now()),
           (${ids[2]}, ${event.id}, ${webhook.id}, ${tenantId}, 3, 'pending', now() - interval '1 minute')
  `.execute(db);

  // Recently changed: perhaps its job is on its way. Left alone.
  expect(await queueStalledFifoHeads(db, 5000)).toBe(0);
  await sql`update deliveries set updated_at = now() - interval '10 seconds' where id = ${ids[1]}`.execute(
    db,
  );
  expect(await queueStalledFifoHeads(db, 5000)).toBe(1);
  expect((await jobsOf(db, ids[1]!)).map((job) => job.payload)).toEqual([{ id: ids[1], attempt: 1 }]);
  expect(await jobsOf(db, ids[2]!)).toEqual([]);
});
