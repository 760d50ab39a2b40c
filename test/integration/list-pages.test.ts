/**
 * The lists' page and total (`pageWithTotal`): both from one statement, so from one snapshot —
 * two statements side by side could see a row committed between them and answer `total: 1`
 * with no entries. Only a page past the end counts in a second statement.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { pageWithTotal } from '../../src/db/page.js';
import { recordingStatements, withTestDatabase } from '../helpers/database.js';

let ctx: Awaited<ReturnType<typeof withTestDatabase>>;
beforeAll(async () => {
  ctx = await withTestDatabase();
  await ctx.handle.pool.query(`insert into tenants (id) select 'page-' || n from generate_series(1, 5) as n`);
});
afterAll(async () => {
  await ctx?.cleanup();
});

/** Lists tenants `page-*` by id, counting the statements it takes. */
async function listTenants(limit: number, offset: number) {
  const { db, statements } = recordingStatements(ctx.handle.db);
  const base = db.selectFrom('tenants').where('id', 'like', 'page-%');
  const { rows, total } = await pageWithTotal(base, (q) => q.select('id').orderBy('id'), {
    limit,
    offset,
  });
  return { rows, total, statements: statements.length };
}

it('a page and its total come from one statement, without the count among the rows', async () => {
  expect(await listTenants(2, 1)).toEqual({
    rows: [{ id: 'page-2' }, { id: 'page-3' }],
    total: 5,
    statements: 1,
  });
});

it('an empty first page is a total of 0, from the same one statement', async () => {
  const base = ctx.handle.db.selectFrom('tenants').where('id', '=', 'no-such-tenant');
  expect(await pageWithTotal(base, (q) => q.select('id'), { limit: 10, offset: 0 })).toEqual({
    rows: [],
    total: 0,
  });
});

it('a page past the end has no rows and still the total', async () => {
  expect(await listTenants(10, 20)).toEqual({ rows: [], total: 5, statements: 2 });
});
