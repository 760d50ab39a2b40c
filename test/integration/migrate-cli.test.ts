/**
 * `npm run migrate` on the embedded database (DATABASE_URL unset) while a server runs on that
 * DATA_DIR, as it does under `npm start`: the command applies what is pending and leaves the
 * server it found running.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, expect, it } from 'vitest';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import { REPO_ROOT, runFile } from '../helpers/process.js';

let server: EmbeddedPostgres | undefined;
let dataDir: string | undefined;

afterAll(async () => {
  await server?.stop().catch(() => undefined);
  if (dataDir) await fs.rm(dataDir, { recursive: true, force: true });
});

const answers = async (url: string): Promise<boolean> => {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
    return (await client.query('select 1 as one')).rows[0]?.one === 1;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
};

it('npm run migrate against a running embedded server: migrations applied, the server left running', async () => {
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'hookrelay-migrate-cli-'));
  server = await startEmbeddedPostgres({ dataDir });
  const { DATABASE_URL: _unset, ...env } = process.env;
  const run = () =>
    runFile(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'src/db/migrate-cli.ts')], {
      cwd: REPO_ROOT,
      env: { ...env, NODE_ENV: 'development', DATA_DIR: dataDir! },
      timeout: 120_000,
    });

  const first = await run();
  expect(first.stderr).toBe('');
  expect(first.code).toBe(0);
  expect(first.stdout).toMatch(/^applied: 001_initial\.sql, .*\n$/);
  expect(await answers(server.connectionString)).toBe(true);

  const again = await run();
  expect(again.code).toBe(0);
  expect(again.stdout).toBe('schema is up to date\n');
  expect(await answers(server.connectionString)).toBe(true);
});
