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

/** The column that carries the count alongside a page's rows. */
const TOTAL = 'total_matching';

/**
 * One page of a list and the number of rows its filters match, from one statement and so from
 * one snapshot (`count(*) over ()` counts the matches before `limit`): a page and a count run
 * side by side could see a row committed between them and answer `total: 1` with no entries.
 * `base` holds the filters, `page` selects and orders them. Only a page past the end (no rows,
 * `offset` > 0) needs a second statement for its total.
 */
export async function pageWithTotal<DB, TB extends keyof DB, O>(
  base: SelectQueryBuilder<DB, TB, object>,
  page: (base: SelectQueryBuilder<DB, TB, object>) => SelectQueryBuilder<DB, TB, O>,
  window: Page,
): Promise<{ rows: O[]; total: number }> {
  type Counted = O & Record<typeof TOTAL, number>;
  const matched = (await page(base)
    .select(sql<number>`(count(*) over ())::int`.as(TOTAL))
    .limit(window.limit)
    .offset(window.offset)
    .execute()) as Counted[];
  if (matched.length > 0) {
    const total = matched[0]![TOTAL];
    const rows = matched.map(({ [TOTAL]: _total, ...row }: Counted) => row as O);
    return { rows, total };
  }
  if (window.offset === 0) return { rows: [], total: 0 };
  const count = await base.select(sql<number>`count(*)::int`.as(TOTAL)).executeTakeFirstOrThrow();
  return { rows: [], total: (count as Record<typeof TOTAL, number>)[TOTAL] };
}
