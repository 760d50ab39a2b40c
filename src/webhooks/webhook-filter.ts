/**
 * A webhook's payload filter: a SQL/JSON path predicate (ISO SQL:2016, PostgreSQL's jsonpath)
 * over the body a receiver gets, `{"type", "timestamp", "data"}`. PostgreSQL parses it when it
 * is saved and evaluates it in the statement that creates deliveries (`filter_matches()`,
 * migration 011), in silent mode: a filter that errors on an event does not match it.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import { AppError } from '../errors.js';
import { filterMatches } from '../events/event-type-match.js';
import type { FilterTestBody } from './webhook-schemas.js';
import type { WebhookRow } from './webhook-repository.js';

/** A 400 naming `filter`, with PostgreSQL's own words, when the filter does not parse. */
export async function assertFilter(db: Kysely<Database>, filter: string): Promise<void> {
  try {
    await sql`select ${filter}::jsonpath`.execute(db);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code !== 'string' || !/^(42|22)/.test(code)) throw err;
    throw new AppError('invalid_request', 'The request body is invalid.', {
      details: [{ field: '/filter', message: `is not a SQL/JSON path: ${(err as Error).message}` }],
      cause: err,
    });
  }
}

export interface FilterTestAnswer {
  matches: boolean;
  filter_matches: boolean;
  event_type_matches: boolean;
  filter: string | null;
}

/** Whether an event with this body would be delivered to the webhook. */
export async function testFilter(
  db: Kysely<Database>,
  webhook: Pick<WebhookRow, 'filter' | 'event_types'>,
  body: FilterTestBody,
): Promise<FilterTestAnswer> {
  const eventTypeMatches = webhook.event_types.some((entry) => filterMatches(entry, body.type));
  let filterPasses = true;
  if (webhook.filter !== null) {
    // filter_matches(), the function the storing statement uses: the same body, with the
    // timestamp written as deliveries write it.
    const createdAt = body.timestamp !== undefined ? new Date(body.timestamp) : new Date();
    const { rows } = await sql<{ matches: boolean | null }>`
      select filter_matches(${webhook.filter}, ${body.type}, ${createdAt}::timestamptz,
                            ${JSON.stringify(body.data)}::json) as matches
    `.execute(db);
    filterPasses = rows[0]?.matches === true;
  }
  return {
    matches: eventTypeMatches && filterPasses,
    filter_matches: filterPasses,
    event_type_matches: eventTypeMatches,
    filter: webhook.filter,
  };
}
