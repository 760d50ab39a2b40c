/**
 * A fresh migrated database per test file, cloned from the template that global-setup built
 * (`create database … template …` copies files: milliseconds, not a migration run).
 */
import { randomBytes } from 'node:crypto';
import type { Kysely, KyselyPlugin } from 'kysely';
import pg from 'pg';
import { inject } from 'vitest';
import { createDatabase, type DatabaseHandle } from '../../src/db/database.js';
import { withDatabase } from './urls.js';

export interface TestDatabase {
  url: string;
  name: string;
  /** Drops the database, ending any connection still open to it. */
  drop(): Promise<void>;
}

/** Runs `fn` with a client of the admin database (the server's own), closed afterwards. */
export async function withAdmin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: inject('adminDatabaseUrl') });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `test_${randomBytes(6).toString('hex')}`;
  const template = inject('templateDatabase');
  await withAdmin(async (client) => {
    // A connection to the template that just closed may linger for a moment on the server.
    for (let attempt = 0; ; attempt++) {
      try {
        await client.query(`create database ${name} template ${template}`);
        return;
      } catch (err) {
        if ((err as { code?: string }).code !== '55006' || attempt >= 50) throw err;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  });
  return {
    name,
    url: withDatabase(inject('adminDatabaseUrl'), name),
    drop: () =>
      withAdmin((client) => client.query(`drop database if exists ${name} with (force)`)).then(
        () => undefined,
      ),
  };
}

/** A cloned database and a Kysely handle on it, for tests that talk to tables directly. */
export async function withTestDatabase(): Promise<{
  database: TestDatabase;
  handle: DatabaseHandle;
  cleanup(): Promise<void>;
}> {
  const database = await createTestDatabase();
  const handle = createDatabase(database.url, { max: 5 });
  return {
    database,
    handle,
    async cleanup() {
      await handle.close();
      await database.drop();
    },
  };
}

/**
 * `db` with every statement it runs kept, in order: a raw `sql` statement as its text (its
 * parameters as `$`), a built query as its node kind (`SelectQueryNode`, …).
 */
export function recordingStatements<DB>(db: Kysely<DB>): { db: Kysely<DB>; statements: string[] } {
  const statements: string[] = [];
  const recording: KyselyPlugin = {
    transformQuery: (args) => {
      const node = args.node as { kind: string; sqlFragments?: readonly string[] };
      statements.push(node.kind === 'RawNode' ? node.sqlFragments!.join('$') : node.kind);
      return args.node;
    },
    transformResult: (args) => Promise.resolve(args.result),
  };
  return { db: db.withPlugin(recording), statements };
}
