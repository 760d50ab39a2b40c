import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { beat, sweepStaleWorkers } from '../../src/delivery/worker-heartbeat.js';
import { withTestDatabase } from '../helpers/database.js';

let ctx: Awaited<ReturnType<typeof withTestDatabase>>;
beforeAll(async () => {
  ctx = await withTestDatabase();
});
afterAll(async () => {
  await ctx?.cleanup();
});

async function lockedJob(key: string, lockedBy: string, lockedSecondsAgo: number): Promise<string> {
  const db = ctx.handle.db;
  const { rows } = await sql<{ id: string }>`
    select id from graphile_worker.add_job('deliver', '{}'::json, job_key => ${key})
  `.execute(db);
  const id = rows[0]!.id;
  await sql`
    update graphile_worker._private_jobs
       set locked_by = ${lockedBy}, locked_at = now() - make_interval(secs => ${lockedSecondsAgo})
     where id = ${id}
  `.execute(db);
  return id;
}

async function lockOf(id: string): Promise<string | null> {
  const { rows } = await sql<{ locked_by: string | null }>`
    select locked_by from graphile_worker._private_jobs where id = ${id}
  `.execute(ctx.handle.db);
  return rows[0]!.locked_by;
}

it('releases the jobs of a worker whose heartbeat is stale, and keeps a live worker’s', async () => {
  const db = ctx.handle.db;
  await beat(db, ['dead-worker']);
  await sql`update worker_heartbeats set last_seen_at = now() - interval '5 minutes' where worker_id = 'dead-worker'`.execute(
    db,
  );
  await beat(db, ['live-worker']);
  const deadJob = await lockedJob('delivery:a', 'dead-worker', 120);
  const liveJob = await lockedJob('delivery:b', 'live-worker', 120);

  const released = await sweepStaleWorkers(db, 30_000);

  expect(released).toEqual(['dead-worker']);
  expect(await lockOf(deadJob)).toBeNull();
  expect(await lockOf(liveJob)).toBe('live-worker');
  const rows = await db.selectFrom('worker_heartbeats').select('worker_id').execute();
  expect(rows.map((r) => r.worker_id)).toEqual(['live-worker']);
});

it('releases a job locked long ago by a worker that never wrote a heartbeat, but not a recent lock', async () => {
  const db = ctx.handle.db;
  const old = await lockedJob('delivery:c', 'ghost', 300);
  const recent = await lockedJob('delivery:d', 'starting-up', 1);
  const released = await sweepStaleWorkers(db, 30_000);
  expect(released).toContain('ghost');
  expect(released).not.toContain('starting-up');
  expect(await lockOf(old)).toBeNull();
  expect(await lockOf(recent)).toBe('starting-up');
});
