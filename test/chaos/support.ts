/**
 * Shared pieces of the fault-injection suite: sizes (default for CI, full with CHAOS_LONG=1),
 * the service as a child process with bounded log capture, bulk delivery fixtures, receiver
 * tallies, a receiver that holds its answers until told, and a process's peak memory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import path from 'node:path';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../src/db/database.js';
import { REPO_ROOT } from '../helpers/process.js';
import { receivedRequest, type ReceivedRequest } from '../helpers/receiver.js';

/** CHAOS_LONG=1 runs the full sizes; the default sizes keep `npm test` within CI's time. */
export const LONG = process.env.CHAOS_LONG === '1';

export const size = (ciDefault: number, long: number): number => (LONG ? long : ciDefault);

/** One summary line per test, greppable: `[chaos] <name>: key=value …`. */
export function report(name: string, figures: Record<string, string | number | boolean>): void {
  const fields = Object.entries(figures).map(([key, value]) => `${key}=${value}`);
  console.log(`[chaos] ${name}: ${fields.join(' ')}`);
}

export interface ChaosProcess {
  child: ChildProcess;
  pid: number;
  /** The last lines the process wrote (stdout and stderr), for failure messages. */
  tail(lines?: number): string;
  /** Resolves with the first parsed JSON log line whose `msg` is `msg` (and that `match` accepts). */
  logged(msg: string, match?: (entry: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
  /** How many JSON log lines with this `msg` were seen so far. */
  count(msg: string): number;
  /** The API port from the "listening" line (rejects if the process exits first). */
  listening: Promise<number>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running = new Set<ChaosProcess>();

/**
 * `node --import tsx src/main.ts` with `env`. Unlike test/helpers/process.ts this keeps only
 * the last 300 lines, so a process that logs every delivery for minutes costs the test nothing.
 */
export function spawnChaosService(env: Record<string, string>): ChaosProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'src/main.ts')], {
    cwd: REPO_ROOT,
    env: { ...process.env, NODE_ENV: 'test', LOG_LEVEL: 'warn', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const counts = new Map<string, number>();
  const waiters: {
    msg: string;
    match: (entry: Record<string, unknown>) => boolean;
    resolve: (entry: Record<string, unknown>) => void;
  }[] = [];
  const seen: Record<string, unknown>[] = [];
  let partial = '';

  // CHAOS_LOG_DIR=<dir> keeps every line of every process in <dir>/<pid>.log, for a failure's post-mortem.
  const logFile = process.env.CHAOS_LOG_DIR ? path.join(process.env.CHAOS_LOG_DIR, `${child.pid}.log`) : '';
  const onLine = (line: string) => {
    if (logFile) void fs.appendFile(logFile, line + '\n');
    lines.push(line);
    if (lines.length > 300) lines.shift();
    if (!line.startsWith('{')) return;
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    const msg = String(entry.msg);
    counts.set(msg, (counts.get(msg) ?? 0) + 1);
    if (seen.length < 2000) seen.push(entry);
    for (const waiter of [...waiters]) {
      if (waiter.msg === msg && waiter.match(entry)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(entry);
      }
    }
  };
  const onData = (chunk: Buffer) => {
    const parts = (partial + chunk.toString()).split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) onLine(line);
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const logged = (msg: string, match: (entry: Record<string, unknown>) => boolean = () => true) => {
    const earlier = seen.find((entry) => entry.msg === msg && match(entry));
    if (earlier) return Promise.resolve(earlier);
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      waiters.push({ msg, match, resolve });
      void exited.then(({ code, signal }) =>
        reject(new Error(`process exited (${code ?? signal}) before logging "${msg}":\n${lines.join('\n')}`)),
      );
    });
  };
  const listening = logged('listening').then((entry) => Number(entry.port));
  listening.catch(() => undefined);

  const proc: ChaosProcess = {
    child,
    pid: child.pid!,
    tail: (n = 60) => lines.slice(-n).join('\n'),
    logged,
    count: (msg) => counts.get(msg) ?? 0,
    listening,
    exited,
  };
  running.add(proc);
  void exited.then(() => running.delete(proc));
  return proc;
}

/** SIGTERM and wait; SIGKILL if it is still there after `graceMs`. */
export async function stopProcess(proc: ChaosProcess, graceMs = 30_000): Promise<void> {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  proc.child.kill('SIGTERM');
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), graceMs);
  await proc.exited;
  clearTimeout(timer);
}

/** For afterAll: kills whatever this file's tests left running. */
export async function killAll(): Promise<void> {
  await Promise.all(
    [...running].map(async (proc) => {
      proc.child.kill('SIGKILL');
      await proc.exited;
    }),
  );
}

/** Peak resident set size (VmHWM) of a live process, in MiB, from /proc. */
export async function peakRssMiB(pid: number): Promise<number> {
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8');
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(status);
  if (!match) throw new Error(`no VmHWM for pid ${pid}`);
  return Math.round(Number(match[1]) / 1024);
}

export { queueMany } from '../helpers/fixtures.js';

/** How often each webhook-id arrived. */
export function arrivals(requests: readonly Pick<ReceivedRequest, 'headers'>[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const request of requests) {
    const id = String(request.headers['webhook-id']);
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

/** Lost (expected, never arrived), duplicated (arrived more than once) and unknown (never expected) ids. */
export function tally(expected: readonly string[], counts: ReadonlyMap<string, number>) {
  const wanted = new Set(expected);
  const lost = expected.filter((id) => !counts.has(id));
  const duplicated = [...counts].filter(([, n]) => n > 1).map(([id]) => id);
  const extraArrivals = [...counts.values()].reduce((sum, n) => sum + n - 1, 0);
  const unknown = [...counts.keys()].filter((id) => !wanted.has(id));
  return { lost, duplicated, extraArrivals, unknown };
}

/**
 * What graphile-worker's queue still holds: jobs, how many of them are locked, and how many
 * deliveries the jobs name (a job names a batch).
 */
export async function queueState(
  db: Kysely<Database>,
): Promise<{ jobs: number; locked: number; deliveries: number }> {
  const { rows } = await sql<{ jobs: number; locked: number; deliveries: number }>`
    select count(*)::int as jobs, count(locked_by)::int as locked,
           coalesce(sum(coalesce(json_array_length(payload->'deliveries'), 1)), 0)::int as deliveries
      from graphile_worker._private_jobs
  `.execute(db);
  return rows[0]!;
}

/** Deliveries whose lease is held: in flight, or left by a process that stopped without recording them. */
export async function leasedDeliveries(db: Kysely<Database>): Promise<string[]> {
  const { rows } = await sql<{ id: string }>`select delivery_id as id from delivery_leases`.execute(db);
  return rows.map((row) => row.id);
}

/** Delivery rows by status. */
export async function statusCounts(db: Kysely<Database>): Promise<Record<string, number>> {
  const { rows } = await sql<{ status: string; n: number }>`
    select status, count(*)::int as n from deliveries group by status
  `.execute(db);
  return Object.fromEntries(rows.map((row) => [row.status, row.n]));
}

/**
 * A receiver on 127.0.0.1 that holds every answer until `release()` (then 200), and answers
 * at once from then on. With every worker waiting on it, no worker can be between jobs.
 */
export interface GatedReceiver {
  url: string;
  requests: ReceivedRequest[];
  /** Requests received whose answer is being held. */
  held(): number;
  /** Answers every held request with 200, and every later one at once. */
  release(): void;
  close(): Promise<void>;
}

export async function startGatedReceiver(): Promise<GatedReceiver> {
  const requests: ReceivedRequest[] = [];
  const waiting = new Set<http.ServerResponse>();
  const sockets = new Set<Socket>();
  let open = false;
  const answer = (res: http.ServerResponse) => {
    waiting.delete(res);
    if (!res.destroyed) res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      requests.push(receivedRequest(req, chunks, requests.length));
      if (open) answer(res);
      else {
        waiting.add(res);
        res.once('close', () => waiting.delete(res));
      }
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    held: () => waiting.size,
    release() {
      open = true;
      for (const res of [...waiting]) answer(res);
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

/** An HTTP listener that counts the connections it accepts (port 0: any free one). */
export async function startConnectionCounter(
  host: '127.0.0.1' | '::1',
  port = 0,
): Promise<{
  port: number;
  connections(): number;
  close(): Promise<void>;
}> {
  let connections = 0;
  const server = http.createServer((_req, res) => res.end('reached'));
  server.on('connection', (socket: Socket) => {
    connections++;
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  return {
    port: (server.address() as AddressInfo).port,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Every authenticated route, as [method, path template]: the OpenAPI document's. */
export function apiRoutes(): [method: string, template: string][] {
  const openapi = JSON.parse(readFileSync(path.join(REPO_ROOT, 'docs/openapi.json'), 'utf8')) as {
    paths: Record<string, Record<string, unknown>>;
  };
  return [
    ...Object.entries(openapi.paths).flatMap(([template, operations]) =>
      Object.keys(operations)
        .filter((m) => ['get', 'post', 'put', 'patch', 'delete'].includes(m))
        .map((m) => [m.toUpperCase(), template] as [string, string]),
    ),
  ];
}
