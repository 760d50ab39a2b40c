/**
 * The embedded PostgreSQL (DATABASE_URL unset): its connections run one step of priority below
 * the service, and `npm run migrate` against a server running on the same DATA_DIR (as under
 * `npm start`) applies what is pending and leaves that server running.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, expect, it } from 'vitest';
import { SERVER_NICE, startEmbeddedPostgres, type EmbeddedPostgres } from '../../src/db/embedded-postgres.js';
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

it('the server and the connections it forks run at SERVER_NICE', async () => {
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'hookrelay-embedded-pg-'));
  server = await startEmbeddedPostgres({ dataDir });
  const postmaster = server.pid!;
  expect(os.getPriority(postmaster)).toBe(SERVER_NICE);
  const client = new pg.Client({ connectionString: server.connectionString });
  await client.connect();
  try {
    const backend = (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
    expect(backend).not.toBe(postmaster);
    expect(os.getPriority(backend)).toBe(SERVER_NICE);
  } finally {
    await client.end();
  }
});

it('npm run migrate against a running embedded server: migrations applied, the server left running', async () => {
  const running = server!;
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
  expect(await answers(running.connectionString)).toBe(true);

  const again = await run();
  expect(again.code).toBe(0);
  expect(again.stdout).toBe('schema is up to date\n');
  expect(await answers(running.connectionString)).toBe(true);
});
