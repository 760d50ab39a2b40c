/**
 * The events-per-second limit holds for a tenant as a whole when several processes (here: two
 * independent pools, each its own set of connections) admit at once.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

describe('the window (admit_events at a given clock)', () => {
  /** A tenant of its own with `limit` events per second; admits `n` at `nowMs`. */
  async function tenantWithLimit(name: string, limit: number) {
    await ensureTenant(a.db, name);
    await sql`update quotas set max_events_per_sec = ${limit} where tenant_id = ${name}`.execute(a.db);
    return async (nowMs: number, n: number) =>
      (await admitEvents(a.db, new Map([[name, n]]), { nowMs })).get(name)!;
  }

  it('admits up to the limit within one second, then nothing', async () => {
    const admit = await tenantWithLimit('window-1', 100);
    let admitted = 0;
    // 500 requests spread over one second, 1 every 2 ms.
    for (let i = 0; i < 500; i++) admitted += (await admit(1_000_000 + i * 2, 1)).admitted;
    expect(admitted).toBe(100);
  });

  it('frees room as slots fall out of the window', async () => {
    const admit = await tenantWithLimit('window-2', 10);
    expect((await admit(5_000, 10)).admitted).toBe(10);
    expect((await admit(5_900, 1)).admitted).toBe(0);
    expect((await admit(6_000, 1)).admitted).toBe(1);
  });

  it('admits part of a batch and reports when room returns', async () => {
    const admit = await tenantWithLimit('window-3', 5);
    const outcome = await admit(10_050, 8);
    expect(outcome).toMatchObject({ admitted: 5, limit: 5, remaining: 0 });
    expect(outcome.resetSeconds).toBeGreaterThanOrEqual(1);
    const next = await admit(10_060, 1);
    expect(next.admitted).toBe(0);
    expect(next.resetSeconds).toBe(1);
  });

  it('a zero limit admits nothing; asking for none takes nothing', async () => {
    expect((await (await tenantWithLimit('window-4', 0))(1, 3)).admitted).toBe(0);
    const admit = await tenantWithLimit('window-5', 3);
    expect(await admit(20_000, 0)).toMatchObject({ admitted: 0, remaining: 3 });
    expect((await admit(20_001, 3)).admitted).toBe(3);
  });
});
