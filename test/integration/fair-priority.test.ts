/**
 * Fairness in the claim order: a tenant's new job is ranked by its place in its own tenant's
 * queue, so one tenant's flood does not sit in front of another tenant's next delivery.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BULK_PRIORITY, enqueueDeliveries, FAIR_RANK_CAP } from '../../src/delivery/enqueue.js';
import { ensureTenant } from '../../src/tenancy/tenant-repository.js';
import { withTestDatabase } from '../helpers/database.js';

let ctx: Awaited<ReturnType<typeof withTestDatabase>>;
beforeAll(async () => {
  ctx = await withTestDatabase();
});
afterAll(async () => {
  await ctx?.cleanup();
});

async function queue(tenant: string, count: number): Promise<string[]> {
  const db = ctx.handle.db;
  await ensureTenant(db, tenant);
  const webhook = crypto.randomUUID();
  const event = crypto.randomUUID();
  await sql`insert into webhooks (id, tenant_id, url, event_types, secret)
            values (${webhook}, ${tenant}, 'http://127.0.0.1:9/', '{*}', 'x')`.execute(db);
  await sql`insert into events (id, tenant_id, type, payload) values (${event}, ${tenant}, 't', '{}')`.execute(
    db,
  );
  const ids = Array.from({ length: count }, () => crypto.randomUUID());
  await db.transaction().execute(async (trx) => {
    await sql`insert into deliveries (id, event_id, webhook_id, tenant_id)
              select unnest(${ids}::uuid[]), ${event}, ${webhook}, ${tenant}`.execute(trx);
    await enqueueDeliveries(
      trx,
      ids.map((id) => ({ deliveryId: id, attempt: 1, tenantId: tenant })),
    );
  });
  return ids;
}

/** Delivery ids in the order graphile-worker would take them. */
async function claimOrder(): Promise<string[]> {
  const { rows } = await sql<{ id: string }>`
    select payload->>'delivery_id' as id from graphile_worker._private_jobs order by priority, run_at, id
  `.execute(ctx.handle.db);
  return rows.map((row) => row.id);
}

it("a flood from one tenant does not sit in front of another tenant's fresh event", async () => {
  const flood = await queue('flooder', 1500);
  const [fresh] = await queue('quiet', 1);
  const order = await claimOrder();
  const position = order.indexOf(fresh!);
  console.log(`fairness: quiet tenant's event is number ${position + 1} of ${order.length} in claim order`);
  // Only the flooder's own first job (rank 0) may come before it.
  expect(position).toBeLessThanOrEqual(1);
  // The flood keeps its own order of ranks, and stops counting at the cap.
  const ranks = await sql<{ priority: number }>`
    select priority from graphile_worker._private_jobs where payload->>'delivery_id' = any(${flood}::text[])
  `.execute(ctx.handle.db);
  expect(Math.max(...ranks.rows.map((r) => r.priority))).toBe(FAIR_RANK_CAP);
});

it('a tenant with work waiting ranks its next job behind it', async () => {
  await queue('steady', 3);
  const [fourth] = await queue('steady', 1);
  const { rows } = await sql<{ priority: number }>`
    select priority from graphile_worker._private_jobs where payload->>'delivery_id' = ${fourth!}
  `.execute(ctx.handle.db);
  expect(rows[0]!.priority).toBe(3);
  expect(BULK_PRIORITY).toBeGreaterThan(FAIR_RANK_CAP);
});
