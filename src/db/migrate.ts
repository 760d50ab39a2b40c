/**
 * Installs graphile-worker's own schema, then applies the numbered SQL files in migrations/ in
 * order, each exactly once. An advisory lock makes two processes that start at once take
 * turns: the second finds everything applied and does nothing.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runMigrations as runWorkerMigrations } from 'graphile-worker';
import type pg from 'pg';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));

/** Any constant shared by all our processes; "hookrelay" in ASCII. */
const MIGRATION_LOCK_ID = 0x686f6f6b72656c;

export interface MigrationFile {
  version: number;
  name: string;
  sql: string;
}

export async function readMigrationFiles(dir = MIGRATIONS_DIR): Promise<MigrationFile[]> {
  const names = (await fs.readdir(dir)).filter((name) => /^\d+_.*\.sql$/.test(name)).sort();
  return Promise.all(
    names.map(async (name) => ({
      version: Number.parseInt(name, 10),
      name,
      sql: await fs.readFile(path.join(dir, name), 'utf8'),
    })),
  );
}

/** Returns the names of the migrations it applied (empty when the schema was current). */
export async function migrate(pool: pg.Pool, options: { dir?: string } = {}): Promise<string[]> {
  const files = await readMigrationFiles(options.dir);
  const client = await pool.connect();
  const applied: string[] = [];
  try {
    await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_ID]);
    await client.query(`
      create table if not exists schema_migrations (
        version     integer primary key,
        name        text not null,
        applied_at  timestamptz not null default now()
      )`);
    // graphile-worker's schema first: our functions build its job_spec type
    // (deliver_job_spec, migration 011). It serialises its own migrations with a lock of its own.
    await runWorkerMigrations({ pgPool: pool });
    const done = new Set(
      (await client.query<{ version: number }>('select version from schema_migrations')).rows.map(
        (r) => r.version,
      ),
    );
    for (const file of files) {
      if (done.has(file.version)) continue;
      await client.query('begin');
      try {
        await client.query(file.sql);
        await client.query('insert into schema_migrations (version, name) values ($1, $2)', [
          file.version,
          file.name,
        ]);
        await client.query('commit');
      } catch (err) {
        await client.query('rollback');
        throw new Error(`migration ${file.name} failed: ${(err as Error).message}`, { cause: err });
      }
      applied.push(file.name);
    }
  } finally {
    await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_ID]).catch(() => undefined);
    client.release();
  }
  return applied;
}
