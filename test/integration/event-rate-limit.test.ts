/**
 * The events-per-second limit holds for a tenant as a whole when several processes (here: two
 * independent pools, each its own set of connections) admit at once.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createDatabase, type DatabaseHandle } from '../../src/db/database.js';
import { admitEvents, eventsInWindow } from '../../src/tenancy/event-rate-limit.js';
import { ensureTenant } from '../../src/tenancy/tenant-repository.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

let database: TestDatabase;
let a: DatabaseHandle;
let b: DatabaseHandle;
beforeAll(async () => {
  database = await createTestDatabase();
  a = createDatabase(database.url, { max: 8 });
  b = createDatabase(database.url, { max: 8 });
});
afterAll(async () => {
  await a?.close();
  await b?.close();
  await database?.drop();
});

async function admitOne(handle: DatabaseHandle, tenant: string): Promise<number> {
  return handle.db.transaction().execute(async (trx) => {
    const result = await admitEvents(trx, new Map([[tenant, 1]]));
    return result.get(tenant)?.admitted ?? 0;
  });
}

it('two pools together admit the tenant limit, not twice it', async () => {
  await ensureTenant(a.db, 'burst');
  await sql`update quotas set max_events_per_sec = 100 where tenant_id = 'burst'`.execute(a.db);
  const started = Date.now();
  const attempts = Array.from({ length: 300 }, (_, i) => admitOne(i % 2 === 0 ? a : b, 'burst'));
  const admitted = (await Promise.all(attempts)).reduce((sum, n) => sum + n, 0);
  const seconds = (Date.now() - started) / 1000;
  console.log(
    `rate limit: 300 requests from two pools in ${seconds.toFixed(2)} s, limit 100/s -> ${admitted} admitted`,
  );
  // Within one second exactly the limit passes; a slow machine may stretch the run over more
  // seconds, and each new second may admit up to the limit again — never more.
  expect(admitted).toBeGreaterThanOrEqual(100);
  expect(admitted).toBeLessThanOrEqual(100 * Math.ceil(seconds));
  if (seconds < 1) expect(await eventsInWindow(a.db, 'burst')).toBe(100);
});

it('an UPDATE quotas applies to the next admission', async () => {
  await ensureTenant(a.db, 'raised');
  await sql`update quotas set max_events_per_sec = 2 where tenant_id = 'raised'`.execute(a.db);
  expect(await admitOne(a, 'raised')).toBe(1);
  expect(await admitOne(a, 'raised')).toBe(1);
  expect(await admitOne(a, 'raised')).toBe(0);
  await sql`update quotas set max_events_per_sec = 5 where tenant_id = 'raised'`.execute(b.db);
  expect(await admitOne(b, 'raised')).toBe(1);
});

it('a rolled-back ingest transaction gives its admissions back', async () => {
  await ensureTenant(a.db, 'rollback');
  await sql`update quotas set max_events_per_sec = 1 where tenant_id = 'rollback'`.execute(a.db);
  await expect(
    a.db.transaction().execute(async (trx) => {
      await admitEvents(trx, new Map([['rollback', 1]]));
      throw new Error('insert failed');
    }),
  ).rejects.toThrow('insert failed');
  expect(await admitOne(a, 'rollback')).toBe(1);
});
