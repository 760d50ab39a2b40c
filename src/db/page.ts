import { sql, type SelectQueryBuilder } from 'kysely';

/**
 * One page of a list and the number of rows its filters match, in parallel: `base` holds the
 * filters, `page` selects, orders and limits them.
 */
export async function pageWithTotal<DB, TB extends keyof DB, O>(
  base: SelectQueryBuilder<DB, TB, object>,
  page: (base: SelectQueryBuilder<DB, TB, object>) => SelectQueryBuilder<DB, TB, O>,
  window: { limit: number; offset: number },
): Promise<{ rows: O[]; total: number }> {
  const [rows, count] = await Promise.all([
    page(base).limit(window.limit).offset(window.offset).execute(),
    base.select(sql<number>`count(*)::int`.as('total')).executeTakeFirstOrThrow(),
  ]);
  return { rows, total: (count as { total: number }).total };
}
