/**
 * What `npm run bench` and `npm run soak` run against: an embedded PostgreSQL in a temporary
 * directory, and the built service (`node dist/main.js`) as a child process on a free port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { signToken } from '../src/http/auth.js';
import { createDatabase } from '../src/db/database.js';
import { startEmbeddedPostgres } from '../src/db/embedded-postgres.js';
import { migrate } from '../src/db/migrate.js';
import { peakRssMb } from './lib.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

// A bench whose output is piped into a reader that stops early (`| head`) would die of EPIPE at
// its next write and leave the servers it started running; instead such writes are dropped and
// it goes on to stop them.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
});

/** The HS256 key every service process started here shares, so one token works on all of them. */
export const BENCH_JWT_SECRET = 'bench-secret-0123456789abcdef';
/** 32 bytes, base64: the bench's SECRETS_KEY (its secrets are throw-away). */
export const BENCH_SECRETS_KEY = Buffer.alloc(32, 7).toString('base64');

export interface BenchDatabase {
  url: string;
  /** Whether pg_stat_statements is loaded and created in the database (see startBenchDatabase). */
  statementStats: boolean;
  /** The server's postmaster (line 1 of postmaster.pid), for CPU accounting; undefined if unreadable. */
  postmasterPid: number | undefined;
  /** Stops the server and removes its directory. */
  stop(): Promise<void>;
}

/**
 * A fresh, migrated embedded PostgreSQL under the system's temporary directory, with the
 * server's defaults for durability (fsync and synchronous_commit on). With `statementStats`,
 * pg_stat_statements is loaded (which takes a restart: shared_preload_libraries) and created
 * in the database, so that statements can be counted.
 */
export async function startBenchDatabase(
  prefix: string,
  options: { statementStats?: boolean } = {},
): Promise<BenchDatabase> {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  const start = () => startEmbeddedPostgres({ dataDir, databaseName: 'bench' });
  let server = await start().catch(async (err) => {
    await fs.rm(dataDir, { recursive: true, force: true });
    throw err;
  });
  const stop = async () => {
    await server.stop();
    await fs.rm(dataDir, { recursive: true, force: true });
  };
  const statementStats = options.statementStats ?? false;
  try {
    if (statementStats) {
      await withClient(server.adminConnectionString, (client) =>
        client.query(`alter system set shared_preload_libraries = 'pg_stat_statements'`),
      );
      await server.stop();
      server = await start();
      await withClient(server.connectionString, (client) =>
        client.query('create extension if not exists pg_stat_statements'),
      );
    }
    const handle = createDatabase(server.connectionString, { max: 4 });
    await migrate(handle.pool);
    await handle.close();
  } catch (err) {
    await stop();
    throw err;
  }
  return { url: server.connectionString, statementStats, postmasterPid: server.pid, stop };
}

async function withClient<T>(url: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

export interface ServiceProcess {
  child: ChildProcess;
  port: number;
  baseUrl: string;
  /** Largest resident set seen so far, in MB (sampled now and at stop). */
  peakRss(): Promise<number>;
  stop(): Promise<void>;
}

/** How long a service process gets to stop after SIGTERM before it is killed. */
const STOP_TIMEOUT_MS = 30_000;

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * `node dist/main.js` in production mode with `env` on top; resolves once `/health` answers 200
 * (for a ROLE=worker process, which has no API: once its METRICS_PORT answers `/metrics`).
 */
export async function startServiceProcess(env: Record<string, string>): Promise<ServiceProcess> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      ...(process.env.BENCH_SERVICE_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
      path.join(ROOT, 'dist/main.js'),
    ],
    {
      cwd: ROOT,
      env: {
        ...process.env,
        NODE_ENV: 'production',
        JWT_SECRET: BENCH_JWT_SECRET,
        // Every process of a run shares one key, as a deployment's processes must.
        SECRETS_KEY: BENCH_SECRETS_KEY,
        // The bench's receivers listen on plain http on 127.0.0.1.
        WEBHOOK_HTTPS_ONLY: 'false',
        LOG_LEVEL: 'warn',
        ...env,
        PORT: String(port),
        ...(env.ROLE === 'worker' ? { METRICS_PORT: String(port) } : {}),
      },
      // BENCH_SERVICE_LOG=1 shows the service's log lines (LOG_LEVEL warn unless set).
      stdio: ['ignore', process.env.BENCH_SERVICE_LOG ? 'inherit' : 'ignore', 'pipe'],
    },
  );
  let err = '';
  child.stderr!.on('data', (chunk: Buffer) => (err = (err + chunk.toString()).slice(-4000)));
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`service exited (${code}):\n${err}`))),
  );
  exited.catch(() => undefined);
  // Ready when /health answers (the "listening" log line is at info, below the bench's log level).
  const readyPath = env.ROLE === 'worker' ? '/metrics' : '/health';
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${port}${readyPath}`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) break;
    if (child.exitCode !== null) await exited;
    if (Date.now() > deadline) throw new Error(`service did not become healthy:\n${err}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  let maxRss = 0;
  const sampleRss = async () => {
    const now = await peakRssMb(child.pid!);
    if (Number.isFinite(now)) maxRss = Math.max(maxRss, now);
    return maxRss;
  };
  return {
    child,
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    peakRss: sampleRss,
    async stop() {
      await sampleRss();
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      // A graceful stop that hangs must not hang the bench.
      const killer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(killer);
    },
  };
}

/** Lifts a tenant's limits out of the way (PUT /quotas with an admin token): the bench measures the service, not its quotas. */
export async function raiseQuotas(baseUrl: string, tenant: string): Promise<void> {
  const res = await fetch(`${baseUrl}/quotas/${tenant}`, {
    method: 'PUT',
    headers: {
      authorization: `Bearer ${await signToken(BENCH_JWT_SECRET, { tenantId: 'ops', role: 'admin' })}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify({
      max_events_per_sec: 1_000_000,
      max_concurrent_deliveries: 1_000_000,
      max_dlq_size: 1_000_000,
    }),
  });
  if (res.status !== 200) throw new Error(`quota update failed: ${res.status} ${await res.text()}`);
}

/** Deliveries not yet delivered: queued, in flight, or waiting for a retry. */
export async function pendingDeliveries(url: string): Promise<number> {
  const { rows } = await withClient(url, (client) =>
    client.query<{ n: number }>(
      `select count(*)::int as n from deliveries where status in ('pending', 'failed')`,
    ),
  );
  return rows[0]?.n ?? 0;
}

export interface DatabaseCounters {
  /** Top-level statements run in the database so far (pg_stat_statements); NaN without it. */
  statements: number;
  /** Transactions committed or rolled back in the database so far (pg_stat_database). */
  transactions: number;
}

/** What the database has run so far; between two readings, how many statements and transactions a phase took. */
export async function databaseCounters(database: BenchDatabase): Promise<DatabaseCounters> {
  return withClient(database.url, async (client) => {
    const { rows } = await client.query<{ transactions: string }>(
      `select xact_commit + xact_rollback as transactions from pg_stat_database where datname = current_database()`,
    );
    let statements = NaN;
    if (database.statementStats) {
      const result = await client.query<{ calls: string | null }>(
        `select sum(calls) as calls from pg_stat_statements
          where dbid = (select oid from pg_database where datname = current_database())`,
      );
      statements = Number(result.rows[0]?.calls ?? 0);
    }
    return { statements, transactions: Number(rows[0]?.transactions ?? NaN) };
  });
}

/** The server's fsync and synchronous_commit settings, e.g. "fsync on, synchronous_commit on". */
export async function durabilitySettings(url: string): Promise<string> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ name: string; setting: string }>(
      `select name, setting from pg_settings where name in ('fsync', 'synchronous_commit') order by name`,
    );
    return rows.map((r) => `${r.name} ${r.setting}`).join(', ');
  });
}
