import { sql, type SelectQueryBuilder } from 'kysely';

export interface Page {
  limit: number;
  offset: number;
}

/** The contract's list shape, shared by every list: `{"entries": [..], "total", "limit", "offset"}`. */
export interface ListAnswer<T> extends Page {
  entries: T[];
  /** Rows matching the filters, regardless of limit and offset. */
  total: number;
}

export function listAnswer<T>(entries: T[], total: number, page: Page): ListAnswer<T> {
  return { entries, total, limit: page.limit, offset: page.offset };
}

/**
 * One page of a list and the number of rows its filters match, in parallel: `base` holds the
 * filters, `page` selects, orders and limits them.
 */
export async function pageWithTotal<DB, TB extends keyof DB, O>(
  base: SelectQueryBuilder<DB, TB, object>,
  page: (base: SelectQueryBuilder<DB, TB, object>) => SelectQueryBuilder<DB, TB, O>,
  window: Page,
): Promise<{ rows: O[]; total: number }> {
  const [rows, count] = await Promise.all([
    page(base).limit(window.limit).offset(window.offset).execute(),
    base.select(sql<number>`count(*)::int`.as('total')).executeTakeFirstOrThrow(),
  ]);
  return { rows, total: (count as { total: number }).total };
}
