/**
 * A real HTTP(S) receiver on 127.0.0.1 for delivery tests. It records every request and can be
 * told how to answer: a status, a delay, a reset mid-response, a slow drip, a huge body, a
 * redirect, raw bytes, or no answer at all. It counts connections and requests in flight.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';

export type Behaviour =
  /** An ordinary answer, optionally after `delayMs`. */
  | { kind: 'status'; status: number; body?: string; headers?: Record<string, string>; delayMs?: number }
  /** Headers and part of the body, then a TCP reset. */
  | { kind: 'reset-mid-response' }
  /** The raw response (status line included) written one byte every `intervalMs`. */
  | { kind: 'drip'; intervalMs: number; status?: number }
  /** Headers at once, then the body one byte every `intervalMs`. */
  | { kind: 'drip-body'; intervalMs: number; status?: number }
  /** `status` with a body of `bytes` bytes, written as fast as the reader takes it. */
  | { kind: 'huge-body'; status: number; bytes: number }
  | { kind: 'redirect'; status: number; location: string }
  /** Never answers; the connection stays open until the client gives up. */
  | { kind: 'hold-open' }
  /** `bytes` written as they are (no HTTP framing added), then the connection is closed. */
  | { kind: 'raw'; bytes: string };

export interface ReceivedRequest {
  index: number;
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** Date.now() when the request's body had arrived. */
  at: number;
}

/** What happened to one huge-body answer. */
export interface HugeBodyRecord {
  total: number;
  /** Bytes handed to the socket before the connection closed (or all of them). */
  written: number;
  /** The client closed the connection before the whole body was written. */
  closedEarly: boolean;
  done: Promise<void>;
}

export interface Receiver {
  url: string;
  port: number;
  requests: ReceivedRequest[];
  /** Connections accepted so far. */
  connections(): number;
  /** Connections open right now. */
  openConnections(): number;
  /** Requests being answered right now, and the most at once so far. */
  inFlight(): number;
  maxInFlight(): number;
  hugeBodies: HugeBodyRecord[];
  /** How to answer request number `index` (0-based); the default is 200 `ok`. */
  respond(behaviour: Behaviour | ((index: number, request: ReceivedRequest) => Behaviour)): void;
  close(): Promise<void>;
}

export interface ReceiverOptions {
  /** Serve HTTPS with this key and certificate. */
  tls?: { key: string | Buffer; cert: string | Buffer };
  behaviour?: Behaviour | ((index: number, request: ReceivedRequest) => Behaviour);
}

/** What a receiver keeps of a request whose body has been read (`chunks`). */
export function receivedRequest(req: http.IncomingMessage, chunks: Buffer[], index: number): ReceivedRequest {
  return {
    index,
    method: req.method ?? '',
    path: req.url ?? '',
    headers: req.headers,
    body: Buffer.concat(chunks).toString('utf8'),
    at: Date.now(),
  };
}

export async function startReceiver(options: ReceiverOptions = {}): Promise<Receiver> {
  let behaviourFor: (index: number, request: ReceivedRequest) => Behaviour = () => ({
    kind: 'status',
    status: 200,
    body: 'ok',
  });
  const setBehaviour = (behaviour: NonNullable<ReceiverOptions['behaviour']>) => {
    behaviourFor = typeof behaviour === 'function' ? behaviour : () => behaviour;
  };
  if (options.behaviour) setBehaviour(options.behaviour);

  const requests: ReceivedRequest[] = [];
  const hugeBodies: HugeBodyRecord[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let connections = 0;
  let inFlight = 0;
  let maxInFlight = 0;

  const handler: http.RequestListener = (req, res) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    res.once('close', () => inFlight--);
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const request = receivedRequest(req, chunks, requests.length);
      requests.push(request);
      answer(behaviourFor(request.index, request), req, res);
    });
  };

  const later = (ms: number, fn: () => void) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
  };

  const every = (ms: number, fn: () => boolean) => {
    const timer = setInterval(() => {
      if (!fn()) {
        clearInterval(timer);
        timers.delete(timer);
      }
    }, ms);
    timers.add(timer);
  };

  function answer(behaviour: Behaviour, req: http.IncomingMessage, res: http.ServerResponse): void {
    const socket = req.socket;
    switch (behaviour.kind) {
      case 'status': {
        const send = () => {
          if (res.destroyed) return;
          res.writeHead(behaviour.status, { 'content-type': 'text/plain', ...behaviour.headers });
          res.end(behaviour.body ?? '');
        };
        if (behaviour.delayMs) later(behaviour.delayMs, send);
        else send();
        return;
      }
      case 'reset-mid-response': {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100000' });
        res.write('partial body', () => socket.resetAndDestroy());
        return;
      }
      case 'drip': {
        const raw = Buffer.from(
          `HTTP/1.1 ${behaviour.status ?? 200} OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok`,
        );
        let offset = 0;
        every(behaviour.intervalMs, () => {
          if (socket.destroyed || offset >= raw.length) return false;
          socket.write(raw.subarray(offset, offset + 1));
          offset++;
          return true;
        });
        return;
      }
      case 'drip-body': {
        res.writeHead(behaviour.status ?? 200, { 'content-type': 'text/plain', 'content-length': '1000' });
        let sent = 0;
        every(behaviour.intervalMs, () => {
          if (res.destroyed || sent >= 1000) return false;
          res.write('x');
          sent++;
          return true;
        });
        return;
      }
      case 'huge-body': {
        const record: Partial<HugeBodyRecord> = { total: behaviour.bytes, written: 0, closedEarly: false };
        record.done = new Promise<void>((resolve) =>
          res.once('close', () => {
            record.closedEarly = !res.writableFinished;
            resolve();
          }),
        );
        hugeBodies.push(record as HugeBodyRecord);
        res.writeHead(behaviour.status, {
          'content-type': 'application/octet-stream',
          'content-length': String(behaviour.bytes),
        });
        const chunk = Buffer.alloc(64 * 1024, 'x');
        const pump = () => {
          while (record.written! < behaviour.bytes) {
            if (res.destroyed) return;
            const piece = chunk.subarray(0, Math.min(chunk.length, behaviour.bytes - record.written!));
            record.written! += piece.length;
            if (!res.write(piece)) {
              res.once('drain', pump);
              return;
            }
          }
          res.end();
        };
        pump();
        return;
      }
      case 'redirect': {
        res.writeHead(behaviour.status, { location: behaviour.location });
        res.end();
        return;
      }
      case 'hold-open':
        return;
      case 'raw':
        socket.end(behaviour.bytes);
        return;
    }
  }

  const server = options.tls
    ? https.createServer({ key: options.tls.key, cert: options.tls.cert }, handler)
    : http.createServer(handler);
  server.keepAliveTimeout = 5000;
  server.on('connection', (socket: Socket) => {
    connections++;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    // A client that resets a connection must not crash the test process.
    socket.on('error', () => undefined);
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    url: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    port,
    requests,
    connections: () => connections,
    openConnections: () => sockets.size,
    inFlight: () => inFlight,
    maxInFlight: () => maxInFlight,
    hugeBodies,
    respond: setBehaviour,
    async close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

/**
 * Receivers a test file starts as it goes, all closed at once (in an afterEach): `start` takes
 * the same options as startReceiver.
 */
export function receiverPool(): { start: typeof startReceiver; closeAll(): Promise<void> } {
  const open: Receiver[] = [];
  return {
    async start(...args) {
      const started = await startReceiver(...args);
      open.push(started);
      return started;
    },
    async closeAll() {
      await Promise.all(open.splice(0).map((r) => r.close()));
    },
  };
}
