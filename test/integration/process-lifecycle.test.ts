/**
 * The service as real processes: embedded PostgreSQL start, Ctrl-C, kill -9 and restart on the
 * same DATA_DIR, two processes migrating one empty database, and start-up refusals.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/database.js';
import { spawnService, waitFor, type ServiceProcess } from '../helpers/process.js';

const execFileAsync = promisify(execFile);
const started: ServiceProcess[] = [];
const dirs: string[] = [];

afterAll(async () => {
  for (const proc of started) if (proc.child.exitCode === null) proc.child.kill('SIGKILL');
  for (const dir of dirs) {
    // A server left by a killed process in a test that failed midway: stop it before removing its files.
    await execFileAsync('pkill', ['-f', `postgres -D ${path.join(dir, 'pg')}`]).catch(() => undefined);
    await fs.rm(dir, { recursive: true, force: true });
  }
});

async function tempDataDir(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hookrelay-proc-'));
  dirs.push(dir);
  return dir;
}

function start(env: Record<string, string>): ServiceProcess {
  const proc = spawnService({ JWT_SECRET: 'process-test-secret-0123456789', ...env });
  started.push(proc);
  return proc;
}

async function health(port: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/health`);
  return res.status;
}

/** PIDs of postgres servers running on `dataDir` (from pgrep; none = []). */
async function postgresPids(dataDir: string): Promise<number[]> {
  try {
    const { stdout } = await execFileAsync('pgrep', ['-f', `postgres -D ${path.join(dataDir, 'pg')}`]);
    return stdout.split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

async function embeddedUrl(dataDir: string): Promise<string> {
  const password = (await fs.readFile(path.join(dataDir, 'pg-password'), 'utf8')).trim();
  const pid = (await fs.readFile(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8')).split('\n');
  return `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${pid[3]}/hookrelay`;
}

describe('embedded PostgreSQL', () => {
  it('starts on a fresh DATA_DIR, answers /health, and SIGINT stops it leaving no PostgreSQL running', async () => {
    const dataDir = await tempDataDir();
    const proc = start({ DATA_DIR: dataDir, NUM_WORKERS: '1' });
    const port = await proc.listening;
    expect(await health(port)).toBe(200);
    expect((await postgresPids(dataDir)).length).toBeGreaterThan(0);
    await waitFor(
      () => (proc.output().includes('Webhook service ready') ? true : undefined),
      10_000,
      'the banner',
    );

    proc.child.kill('SIGINT');
    const exit = await proc.exited;
    expect(exit.code).toBe(0);
    expect(await postgresPids(dataDir)).toEqual([]);
    // The development banner (with its admin token) is on stderr; stdout holds only JSON log lines.
    expect(proc.output()).toContain('Admin token (development)');
    expect(proc.stdout()).not.toContain('Admin token');
    expect(
      proc
        .stdout()
        .split('\n')
        .filter((line) => line !== '' && !line.startsWith('{')),
    ).toEqual([]);
    // The log says when the stop began and that it ended.
    const lines = proc
      .output()
      .split('\n')
      .filter((line) => line.startsWith('{'));
    const messages = lines.map((line) => (JSON.parse(line) as { msg: string }).msg);
    expect(messages).toContain('stopping');
    expect(messages.at(-1)).toBe('stopped');
  }, 120_000);

  it('keeps its port across restarts, and `npm run psql` opens psql on it', async () => {
    const dataDir = await tempDataDir();
    const startedOn = async () => {
      const proc = start({ DATA_DIR: dataDir, NUM_WORKERS: '0' });
      await proc.listening;
      // Signals are handled once start-up is over (the banner is its last word).
      await waitFor(
        () => (proc.output().includes('Webhook service ready') ? true : undefined),
        10_000,
        'the banner',
      );
      const line = proc
        .output()
        .split('\n')
        .find((l) => l.includes('"starting embedded PostgreSQL"'));
      return { proc, port: (JSON.parse(line!) as { port: number }).port };
    };
    const first = await startedOn();
    const kept = Number((await fs.readFile(path.join(dataDir, 'pg-port'), 'utf8')).trim());
    expect(kept).toBe(first.port);
    // The runbook's way in: psql on whatever database the service uses, here the embedded one.
    const { stdout } = await execFileAsync(
      process.execPath,
      ['scripts/psql.mjs', '-At', '-c', 'select 40 + 2'],
      {
        env: { ...process.env, DATA_DIR: dataDir, DATABASE_URL: '' },
      },
    );
    expect(stdout.trim()).toBe('42');
    first.proc.child.kill('SIGINT');
    expect((await first.proc.exited).code).toBe(0);

    const second = await startedOn();
    expect(second.port).toBe(first.port);
    second.proc.child.kill('SIGINT');
    expect((await second.proc.exited).code).toBe(0);
  }, 120_000);

  it('after kill -9, a second start on the same DATA_DIR is healthy with the data intact', async () => {
    const dataDir = await tempDataDir();
    const first = start({ DATA_DIR: dataDir, NUM_WORKERS: '1' });
    await first.listening;

    const client = new pg.Client({ connectionString: await embeddedUrl(dataDir) });
    await client.connect();
    await client.query(`insert into tenants (id) values ('survivor')`);
    await client.end();

    first.child.kill('SIGKILL');
    await first.exited;
    // The killed process leaves its database running; the next start must cope with that.
    expect((await postgresPids(dataDir)).length).toBeGreaterThan(0);

    const second = start({ DATA_DIR: dataDir, NUM_WORKERS: '1' });
    const port = await second.listening;
    expect(await health(port)).toBe(200);
    const again = new pg.Client({ connectionString: await embeddedUrl(dataDir) });
    await again.connect();
    const rows = await again.query(`select id from tenants where id = 'survivor'`);
    await again.end();
    expect(rows.rowCount).toBe(1);

    second.child.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);
    expect(await postgresPids(dataDir)).toEqual([]);
  }, 120_000);
});

describe('migrations', () => {
  it('two processes started at once against one empty database both come up, schema migrated once', async () => {
    const database = await createTestDatabase();
    // An empty database: drop everything the template put in.
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    await client.query(
      'drop schema public cascade; create schema public; drop schema graphile_worker cascade; drop schema hookrelay cascade',
    );
    await client.end();

    const a = start({ DATABASE_URL: database.url, NUM_WORKERS: '1' });
    const b = start({ DATABASE_URL: database.url, NUM_WORKERS: '1' });
    const [portA, portB] = await Promise.all([a.listening, b.listening]);
    expect(await health(portA)).toBe(200);
    expect(await health(portB)).toBe(200);

    const check = new pg.Client({ connectionString: database.url });
    await check.connect();
    const applied = await check.query(
      'select version, count(*)::int as n from schema_migrations group by version',
    );
    const files = (await fs.readdir(new URL('../../migrations/', import.meta.url))).filter((f) =>
      f.endsWith('.sql'),
    );
    expect(applied.rowCount).toBe(files.length);
    expect(applied.rows.every((row) => row.n === 1)).toBe(true);
    await check.end();

    a.child.kill('SIGTERM');
    b.child.kill('SIGTERM');
    await Promise.all([a.exited, b.exited]);
    await database.drop();
  }, 120_000);
});

describe('start-up refusals', () => {
  it('NODE_ENV=production without JWT_SECRET exits non-zero with one line naming it', async () => {
    const proc = spawnService({
      NODE_ENV: 'production',
      DATABASE_URL: 'postgres://x@127.0.0.1:1/x',
      JWT_SECRET: '',
    });
    started.push(proc);
    const exit = await proc.exited;
    expect(exit.code).not.toBe(0);
    const lines = proc.output().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/JWT_SECRET/);
  });

  it('NODE_ENV=production without DATABASE_URL exits non-zero with one line naming it', async () => {
    const proc = spawnService({ NODE_ENV: 'production', DATABASE_URL: '', JWT_SECRET: 'x'.repeat(32) });
    started.push(proc);
    const exit = await proc.exited;
    expect(exit.code).not.toBe(0);
    expect(proc.output().trim().split('\n')).toEqual([expect.stringMatching(/DATABASE_URL/)]);
  });

  it('a bad value stops start-up with one line naming the variable', async () => {
    const proc = spawnService({ NUM_WORKERS: 'lots', DATABASE_URL: 'postgres://x@127.0.0.1:1/x' });
    started.push(proc);
    expect((await proc.exited).code).not.toBe(0);
    expect(proc.output().trim().split('\n')).toEqual([expect.stringMatching(/NUM_WORKERS/)]);
  });
});
