/**
 * Named (prepared) statements for the hot paths. A statement whose text starts with the line
 * `-- prepared: <name>` goes to PostgreSQL as a named statement: parsed and planned once per
 * connection and then only executed. Planning the larger ingest and delivery statements (a
 * handful of CTEs each) costs a good part of what running them does, and they run for every
 * batch. Other statements are passed through unchanged. The comment also names the statement in
 * pg_stat_statements and pg_stat_activity.
 *
 * PostgreSQL plans a prepared statement afresh for its first five runs and then keeps a generic
 * plan only if it is not worse; the marked statements reach their rows through primary keys
 * and arrays given as parameters, so the generic plan is the same one.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';

const MARK = /^-- prepared: ([a-z_]+)\n/;

/** Statement name per text: the mark's name and a digest of the text (a name must mean one text). */
const names = new Map<string, string | null>();

function statementName(text: string): string | null {
  let name = names.get(text);
  if (name === undefined) {
    const mark = MARK.exec(text);
    name = mark ? `${mark[1]}_${createHash('sha1').update(text).digest('hex').slice(0, 10)}` : null;
    // Only marked texts are static; unmarked ones are not kept.
    if (name !== null) names.set(text, name);
  }
  return name;
}

type Query = (...args: unknown[]) => unknown;

/** Makes the client send marked statements as named ones (call it on the pool's 'connect'). */
export function usePreparedStatements(client: pg.PoolClient): void {
  const query = client.query.bind(client) as Query;
  (client as unknown as { query: Query }).query = (...args: unknown[]) => {
    const [text, values] = args;
    if (args.length <= 2 && typeof text === 'string' && text.startsWith('-- prepared: ')) {
      const name = statementName(text);
      if (name !== null) return query({ name, text, values: values as unknown[] | undefined });
    }
    return query(...args);
  };
}
