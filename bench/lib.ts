/**
 * Pieces of `npm run bench` and `npm run soak`: a counting receiver (answering at once or after a delay), an HTTP client with a
 * big keep-alive pool, an open-loop load generator, percentiles, peak RSS of a process, and the
 * accounting that makes a run valid or void.
 */
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';

/**
 * The p-th percentile of `count` values of which `sorted` are the known ones, smallest first;
 * the rest (events never delivered) count as larger than any, so a percentile among them is
 * Infinity rather than a figure that leaves them out.
 */
export function percentile(sorted: number[], p: number, count = sorted.length): number {
  if (count === 0) return NaN;
  const index = Math.min(count - 1, Math.max(0, Math.ceil((p / 100) * count) - 1));
  return index < sorted.length ? sorted[index]! : Infinity;
}

export const fmt = (n: number, digits = 0): string =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : 'n/a';

/** One result line: a label padded to a column, then the value. */
export function line(label: string, value: string): void {
  process.stdout.write(`${label.padEnd(62)} ${value}\n`);
}

/**
 * A run is valid only if every request is accounted for (sent = accepted + refused + errors),
 * no request failed in transport, and every accepted event was delivered or is still pending.
 */
export function accountFor(
  label: string,
  accepted: number,
  refused: number,
  errors: number,
  sent: number,
  delivered: number,
  pending: number,
): boolean {
  const ok = accepted + refused + errors === sent && delivered + pending >= accepted && errors === 0;
  line(
    `  accounting (${label})`,
    `${ok ? 'ok' : 'VOID'}: sent ${sent} = accepted ${accepted} + refused ${refused} + errors ${errors}; delivered ${delivered}, pending ${pending}`,
  );
  return ok;
}

export interface Receiver {
  url: string;
  /** How long it waits before answering 200. */
  delayMs: number;
  /** Distinct webhook-ids received (a retry of the same id counts once). */
  distinct(): number;
  /** All requests, retries included. */
  requests(): number;
  /** ms from the payload's `sent_at` (the generator's scheduled send time) to arrival (before any delay), per first arrival. */
  takeLatencies(): number[];
  firstAt(): number | undefined;
  lastAt(): number | undefined;
  reset(): void;
  close(): Promise<void>;
}

const SENT_AT = /"sent_at":([\d.]+)/;

/**
 * Answers 200 at once, or `delayMs` after the request arrived; remembers each webhook-id and
 * how long after `data.sent_at` it arrived.
 */
export async function startReceiver(delayMs = 0): Promise<Receiver> {
  let seen = new Set<string>();
  let latencies: number[] = [];
  let requests = 0;
  let first: number | undefined;
  let last: number | undefined;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const now = Date.now();
      requests++;
      first ??= now;
      last = now;
      const id = String(req.headers['webhook-id'] ?? '');
      if (!seen.has(id)) {
        seen.add(id);
        // The generator's own field, read without parsing the whole body.
        const sentAt = SENT_AT.exec(Buffer.concat(chunks).toString('latin1'));
        if (sentAt) latencies.push(now - Number(sentAt[1]));
      }
      const answer = () => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('ok');
      };
      if (delayMs > 0) setTimeout(answer, delayMs);
      else answer();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    delayMs,
    distinct: () => seen.size,
    requests: () => requests,
    takeLatencies: () => {
      const out = latencies;
      latencies = [];
      return out;
    },
    firstAt: () => first,
    lastAt: () => last,
    reset() {
      seen = new Set();
      latencies = [];
      requests = 0;
      first = undefined;
      last = undefined;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface Client {
  post(
    path: string,
    body: unknown,
    headers?: Record<string, string>,
  ): Promise<{ status: number; body: string }>;
  put(path: string, body: unknown): Promise<{ status: number; body: string }>;
  get(path: string): Promise<{ status: number; body: string }>;
  close(): void;
}

/** A request unanswered this long fails (a transport error), so a stalled service cannot stall the bench. */
const REQUEST_TIMEOUT_MS = 60_000;

/**
 * undici's Pool rather than node:http's Agent: it costs the load generator about a third of
 * the CPU per request on this machine, and the generator shares the machine with what it
 * measures.
 */
export function createClient(baseUrl: string, token: string, maxSockets = 256): Client {
  const pool = new Pool(new URL(baseUrl).origin, {
    connections: maxSockets,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    headersTimeout: REQUEST_TIMEOUT_MS,
    bodyTimeout: REQUEST_TIMEOUT_MS,
  });
  const authorization = `Bearer ${token}`;
  const request = async (
    method: 'GET' | 'POST' | 'PUT',
    path: string,
    payload?: string,
    headers: Record<string, string> = {},
  ) => {
    const res = await pool.request({
      method,
      path,
      headers: {
        authorization,
        ...(payload !== undefined ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      ...(payload !== undefined ? { body: payload } : {}),
    });
    return { status: res.statusCode, body: await res.body.text() };
  };
  return {
    post: (path, body, headers) => request('POST', path, JSON.stringify(body), headers),
    put: (path, body) => request('PUT', path, JSON.stringify(body)),
    get: (path) => request('GET', path),
    close: () => void pool.destroy(),
  };
}

export interface LoadResult {
  sent: number;
  /** By HTTP status (0 = transport error). */
  byStatus: Map<number, number>;
  /** ms from scheduled send time to response, for accepted (202) requests, sorted. */
  latencies: number[];
  seconds: number;
}

/**
 * Open loop: request i is due at start + i / rate whatever happened to earlier ones; its
 * latency counts from that due time, so a generator or service that falls behind shows up as
 * latency instead of quietly sending less.
 */
export async function openLoop(
  rate: number,
  seconds: number,
  send: (i: number, dueAt: number) => Promise<number>,
): Promise<LoadResult> {
  const total = Math.round(rate * seconds);
  const byStatus = new Map<number, number>();
  const latencies: number[] = [];
  const start = Date.now() + 50;
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const dueAt = start + (i * 1000) / rate;
    const wait = dueAt - Date.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    inFlight.push(
      send(i, dueAt).then(
        (status) => {
          byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
          if (status === 202) latencies.push(Date.now() - dueAt);
        },
        () => {
          byStatus.set(0, (byStatus.get(0) ?? 0) + 1);
        },
      ),
    );
  }
  await Promise.all(inFlight);
  return {
    sent: total,
    byStatus,
    latencies: latencies.sort((a, b) => a - b),
    seconds: (Date.now() - start) / 1000,
  };
}

/** Closed loop: `concurrency` senders back to back for `seconds`, or until `done()` says so. */
export async function closedLoop(
  concurrency: number,
  seconds: number,
  send: (i: number, sentAt: number) => Promise<number>,
  done: () => boolean = () => false,
): Promise<LoadResult> {
  const byStatus = new Map<number, number>();
  const latencies: number[] = [];
  const start = Date.now();
  const end = start + seconds * 1000;
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < end && !done()) {
        const i = next++;
        const sentAt = Date.now();
        const status = await send(i, sentAt).catch(() => 0);
        byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
        if (status === 202) latencies.push(Date.now() - sentAt);
      }
    }),
  );
  return {
    sent: next,
    byStatus,
    latencies: latencies.sort((a, b) => a - b),
    seconds: (Date.now() - start) / 1000,
  };
}

/** Peak resident set size (VmHWM) of a process, in MB; Linux only. */
export async function peakRssMb(pid: number): Promise<number> {
  try {
    const status = await fs.readFile(`/proc/${pid}/status`, 'utf8');
    const match = /VmHWM:\s+(\d+) kB/.exec(status);
    return match ? Number(match[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

export async function waitUntil(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(25);
  }
  return check();
}

const CLOCK_TICKS_PER_SECOND = 100;

/** utime + stime (and, with `children`, cutime + cstime: reaped children) of a process, in ms; NaN off Linux. */
async function processCpuMs(pid: number, children = false): Promise<number> {
  try {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): state is field 3, utime field 14.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const [utime, stime, cutime, cstime] = fields.slice(11, 15).map(Number) as [
      number,
      number,
      number,
      number,
    ];
    return ((utime + stime + (children ? cutime + cstime : 0)) * 1000) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return NaN;
  }
}

/** The machine's busy CPU time so far (all cores, /proc/stat; not what a hypervisor stole), in ms; NaN off Linux. */
async function machineCpuMs(): Promise<number> {
  try {
    const first = (await fs.readFile('/proc/stat', 'utf8')).split('\n')[0]!;
    const [user, nice, system, , , irq, softirq] = first.split(/\s+/).slice(1).map(Number);
    return ((user! + nice! + system! + irq! + softirq!) * 1000) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return NaN;
  }
}

/** A PostgreSQL server's CPU so far: the postmaster, its ended backends and its live ones. */
async function serverCpuMs(postmasterPid: number): Promise<number> {
  let total = await processCpuMs(postmasterPid, true);
  for (const entry of await fs.readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await fs.readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === postmasterPid) total += await processCpuMs(Number(entry));
  }
  return total;
}

export interface CpuSplit {
  /** CPU ms per unit of work: the service processes, PostgreSQL, and everything else on the machine. */
  service: number;
  database: number;
  rest: number;
}

/**
 * CPU used between `start()` and `per(units)`, split between the service processes, the
 * database server and the rest of the machine (this bench's load generator and receiver).
 */
export function cpuMeter(servicePids: () => number[], postmasterPid: number | undefined) {
  const read = async () => {
    const service = (await Promise.all(servicePids().map((pid) => processCpuMs(pid)))).reduce(
      (a, b) => a + b,
      0,
    );
    const database = postmasterPid === undefined ? NaN : await serverCpuMs(postmasterPid);
    return { service, database, machine: await machineCpuMs() };
  };
  let from = { service: NaN, database: NaN, machine: NaN };
  return {
    async start() {
      from = await read();
    },
    async per(units: number): Promise<CpuSplit> {
      const to = await read();
      const service = (to.service - from.service) / units;
      const database = (to.database - from.database) / units;
      return { service, database, rest: (to.machine - from.machine) / units - service - database };
    },
  };
}

/** `--name N` from the command line: a whole number ≥ `min`, or undefined when the flag is absent. */
export function numberFlag(name: string, min = 0): number | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const value = Number(process.argv[i + 1]);
  if (!Number.isInteger(value) || value < min) throw new Error(`--${name} takes a whole number ≥ ${min}`);
  return value;
}
