/**
 * Fairness in the claim order: a tenant's new job is ranked by its place in its own tenant's
 * queue, so one tenant's flood does not sit in front of another tenant's next delivery. A job
 * names a batch of one tenant's deliveries (at most MAX_JOB_DELIVERIES).
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BULK_PRIORITY, FAIR_RANK_CAP, MAX_JOB_DELIVERIES } from '../../src/delivery/enqueue.js';
import { withTestDatabase } from '../helpers/database.js';
import { createTenant, createWebhook, queueMany } from '../helpers/fixtures.js';

let ctx: Awaited<ReturnType<typeof withTestDatabase>>;
beforeAll(async () => {
  ctx = await withTestDatabase();
});
afterAll(async () => {
  await ctx?.cleanup();
});

/** `count` deliveries of one event to a new webhook of `tenant`, each with its job. */
async function queue(tenant: string, count: number): Promise<string[]> {
  const db = ctx.handle.db;
  await createTenant(db, tenant);
  const webhook = await createWebhook(db, { tenantId: tenant, url: 'http://127.0.0.1:9/' });
  return queueMany(db, tenant, webhook.id, count);
}

/** Delivery ids in the order graphile-worker would take them (jobs in order, each job's batch in order). */
async function claimOrder(): Promise<string[]> {
  const { rows } = await sql<{ id: string }>`
    select e.entry->>'id' as id
      from graphile_worker._private_jobs j
      cross join lateral json_array_elements(j.payload->'deliveries') with ordinality as e(entry, n)
     order by j.priority, j.run_at, j.id, e.n
  `.execute(ctx.handle.db);
  return rows.map((row) => row.id);
}

/** The priority of the job naming each delivery. */
async function priorityOf(ids: string[]): Promise<number[]> {
  const { rows } = await sql<{ priority: number }>`
    select j.priority
      from graphile_worker._private_jobs j
      cross join lateral json_array_elements(j.payload->'deliveries') as e(entry)
     where e.entry->>'id' = any(${ids}::text[])
  `.execute(ctx.handle.db);
  return rows.map((row) => row.priority);
}

it("a flood from one tenant does not sit in front of another tenant's fresh event", async () => {
  const flood = await queue('flooder', 1500);
  const [fresh] = await queue('quiet', 1);
  const order = await claimOrder();
  const position = order.indexOf(fresh!);
  console.log(`fairness: quiet tenant's event is number ${position + 1} of ${order.length} in claim order`);
  // Only the flooder's own first job (rank 0, one batch) may come before it.
  expect(position).toBeLessThanOrEqual(MAX_JOB_DELIVERIES);
  // The flood's later batches rank behind, and counting stops at the cap.
  const ranks = await priorityOf(flood);
  expect(Math.min(...ranks)).toBe(0);
  expect(Math.max(...ranks)).toBe(FAIR_RANK_CAP);
  const jobs = await sql<{ n: number }>`select count(*)::int as n from graphile_worker._private_jobs`.execute(
    ctx.handle.db,
  );
  expect(jobs.rows[0]!.n).toBe(Math.ceil(1500 / MAX_JOB_DELIVERIES) + 1);
});

it('a tenant with work waiting ranks its next job behind it', async () => {
  await queue('steady', 3);
  const [fourth] = await queue('steady', 1);
  expect(await priorityOf([fourth!])).toEqual([3]);
  expect(BULK_PRIORITY).toBeGreaterThan(FAIR_RANK_CAP);
});
