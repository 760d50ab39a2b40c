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
import { signToken } from '../src/api/auth.js';
import { createDatabase } from '../src/db/database.js';
import { startEmbeddedPostgres } from '../src/db/embedded-postgres.js';
import { migrate } from '../src/db/migrate.js';
import { peakRssMb } from './lib.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

/** The HS256 key every service process started here shares, so one token works on all of them. */
export const BENCH_JWT_SECRET = 'bench-secret-0123456789abcdef';

export interface BenchDatabase {
  url: string;
  /** The server's postmaster (line 1 of postmaster.pid), for CPU accounting; undefined if unreadable. */
  postmasterPid: number | undefined;
  /** Stops the server and removes its directory. */
  stop(): Promise<void>;
}

/** A fresh, migrated embedded PostgreSQL under the system's temporary directory. */
export async function startBenchDatabase(prefix: string): Promise<BenchDatabase> {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  const server = await startEmbeddedPostgres({ dataDir, databaseName: 'bench' }).catch(async (err) => {
    await fs.rm(dataDir, { recursive: true, force: true });
    throw err;
  });
  const stop = async () => {
    await server.stop();
    await fs.rm(dataDir, { recursive: true, force: true });
  };
  try {
    const handle = createDatabase(server.connectionString, { max: 4 });
    await migrate(handle.pool);
    await handle.close();
  } catch (err) {
    await stop();
    throw err;
  }
  const pidFile = await fs.readFile(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8').catch(() => '');
  const postmasterPid = Number(pidFile.split('\n')[0]) || undefined;
  return { url: server.connectionString, postmasterPid, stop };
}

export interface ServiceProcess {
  child: ChildProcess;
  port: number;
  baseUrl: string;
  /** Largest resident set seen so far, in MB (sampled now and at stop). */
  peakRss(): Promise<number>;
  stop(): Promise<void>;
}

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
        LOG_LEVEL: 'warn',
        ...env,
        PORT: String(port),
        ...(env.ROLE === 'worker' ? { METRICS_PORT: String(port) } : {}),
      },
      stdio: ['ignore', 'ignore', 'pipe'],
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
      await exited;
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
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: number }>(
      `select count(*)::int as n from deliveries where status in ('pending', 'failed')`,
    );
    return rows[0]?.n ?? 0;
  } finally {
    await client.end();
  }
}
