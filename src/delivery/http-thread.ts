/**
 * The outbound HTTP client (http-client.ts) on a thread of its own. The service's event loop
 * ingests, answers and records; sending a request, its TLS and reading its answer are as much
 * work again, and on a small machine that loop is what runs out first. Here an attempt crosses
 * to the thread as its URL, headers, body and deadline, and its `AttemptResult` comes back; both
 * directions go in one message per turn of the sending loop. The SSRF guard, the deadline and
 * the response cap all run on the thread, exactly as in http-client.ts.
 *
 * A body crosses as bytes whose buffer is handed over, not copied: it lives outside either
 * heap. The thread's heap has no limit of its own (a worker that reaches one can take the whole
 * process down with it); main.ts keeps both heaps close to what they hold instead. A thread that
 * dies anyway ends its attempts as failed, to be retried on the schedule, and the next attempt
 * starts a new one.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import ipaddr from 'ipaddr.js';
import type { Cidr } from './address-policy.js';
import {
  attemptResult,
  createHttpClient,
  type AttemptResult,
  type HttpClient,
  type HttpClientOptions,
  type OutboundRequest,
} from './http-client.js';

const utf8 = new TextEncoder();

/** What marks the thread's own copy of this module. */
const THREAD = 'hookrelay-http-thread';

/** An attempt to send: its id, the request (its body as bytes), its deadline, and the stop signal it heeds. */
type Send = [id: number, request: ThreadRequest, timeoutMs: number, signal: number | null];
type ThreadRequest = Omit<OutboundRequest, 'body'> & { body: Uint8Array<ArrayBuffer> };

type ToThread = { sends: Send[] } | { abort: number } | { close: true };
type FromThread =
  { results: [id: number, result: AttemptResult][] } | { blocked: ['literal' | 'connect', string] };

interface ThreadData {
  marker: typeof THREAD;
  /** The SSRF allowlist, as address text and prefix length (ipaddr's objects do not cross threads). */
  allowlist: [string, number][];
  connectionsPerOrigin?: number;
}

/** Collects items and hands them over in one call on the next turn of the event loop. */
function perTurn<T>(deliver: (items: T[]) => void): (item: T) => void {
  let items: T[] = [];
  return (item) => {
    items.push(item);
    if (items.length === 1) {
      setImmediate(() => {
        const batch = items;
        items = [];
        deliver(batch);
      });
    }
  };
}

/** The thread: one http-client.ts client, sending what the service asks. */
function serve(port: NonNullable<typeof parentPort>, data: ThreadData): void {
  const client = createHttpClient({
    allowlist: data.allowlist.map(([address, bits]): Cidr => [ipaddr.parse(address), bits]),
    onBlocked: (stage, reason) => port.postMessage({ blocked: [stage, reason] } satisfies FromThread),
    ...(data.connectionsPerOrigin !== undefined ? { connectionsPerOrigin: data.connectionsPerOrigin } : {}),
  });
  /** The service's stop signals, by number. */
  const stops = new Map<number, AbortController>();
  const stopOf = (n: number): AbortController => {
    let controller = stops.get(n);
    if (!controller) stops.set(n, (controller = new AbortController()));
    return controller;
  };
  const answer = perTurn<[number, AttemptResult]>((results) =>
    port.postMessage({ results } satisfies FromThread),
  );
  port.on('message', (message: ToThread) => {
    if ('sends' in message) {
      for (const [id, request, timeoutMs, signal] of message.sends) {
        const options = signal === null ? { timeoutMs } : { timeoutMs, signal: stopOf(signal).signal };
        void client.send(request, options).then((result) => answer([id, result]));
      }
    } else if ('abort' in message) {
      stopOf(message.abort).abort();
    } else {
      client.close();
    }
  });
}

if (!isMainThread && (workerData as ThreadData | undefined)?.marker === THREAD)
  serve(parentPort!, workerData);

/**
 * An `HttpClient` whose requests are made on a worker thread. `close()` closes the thread's
 * connections (requests still in flight end as interrupted) and ends the thread once they have
 * answered.
 */
export function createThreadedHttpClient(options: HttpClientOptions): HttpClient {
  const data: ThreadData = {
    marker: THREAD,
    allowlist: options.allowlist.map(([address, bits]) => [address.toString(), bits]),
    ...(options.connectionsPerOrigin !== undefined
      ? { connectionsPerOrigin: options.connectionsPerOrigin }
      : {}),
  };
  const pending = new Map<number, (result: AttemptResult) => void>();
  const signals = new WeakMap<AbortSignal, number>();
  let nextId = 0;
  let nextSignal = 0;
  let closing = false;
  let thread: Worker | undefined;
  let post: ((send: Send) => void) | undefined;

  const settleAll = (error: string) => {
    for (const [id, resolve] of pending) {
      pending.delete(id);
      resolve(attemptResult({ error, durationMs: 0 }));
    }
  };

  /** The thread, started on first use and again after a failure. */
  const started = (): { worker: Worker; post: (send: Send) => void } => {
    if (thread && post) return { worker: thread, post };
    // Built, the thread runs this file. From the TypeScript sources (tests, `npm run dev`) it
    // starts at scripts/ts-thread.mjs, which registers tsx's loader and then loads this file.
    const worker = import.meta.url.endsWith('.ts')
      ? new Worker(new URL('../../scripts/ts-thread.mjs', import.meta.url), {
          workerData: { ...data, entry: import.meta.url },
        })
      : new Worker(new URL(import.meta.url), { workerData: data });
    worker.unref();
    worker.on('message', (message: FromThread) => {
      if ('results' in message) {
        for (const [id, result] of message.results) {
          const resolve = pending.get(id);
          pending.delete(id);
          resolve?.(result);
        }
        if (pending.size === 0) {
          if (closing) void worker.terminate();
          else worker.unref();
        }
      } else {
        options.onBlocked?.(...message.blocked);
      }
    });
    const lost = (reason: string) => {
      if (thread !== worker) return;
      thread = undefined;
      post = undefined;
      // Whether these requests reached their receivers is unknown: each ends as a failed
      // attempt, to be made again on the retry schedule.
      settleAll(`delivery thread stopped: ${reason}`);
    };
    worker.on('error', (err) => lost(err.message));
    worker.on('exit', (code) => lost(`exit code ${code}`));
    thread = worker;
    post = perTurn<Send>((sends) =>
      worker.postMessage(
        { sends } satisfies ToThread,
        sends.map(([, request]) => request.body.buffer),
      ),
    );
    return { worker, post };
  };

  /** The number the thread knows `signal` by; its abort is passed on once. */
  const signalNumber = (signal: AbortSignal, worker: Worker): number => {
    let n = signals.get(signal);
    if (n === undefined) {
      n = nextSignal++;
      signals.set(signal, n);
      const number = n;
      const abort = () => thread?.postMessage({ abort: number } satisfies ToThread);
      if (signal.aborted) worker.postMessage({ abort: number } satisfies ToThread);
      else signal.addEventListener('abort', abort, { once: true });
    }
    return n;
  };

  return {
    send(request, sendOptions) {
      // Closing, or stopped already: the thread is not asked (one started after a stop would
      // not know that signal was aborted).
      if (closing || sendOptions.signal?.aborted) {
        return Promise.resolve(
          attemptResult({ error: 'interrupted by shutdown', interrupted: true, durationMs: 0 }),
        );
      }
      const { worker, post: send } = started();
      const id = nextId++;
      if (pending.size === 0) worker.ref();
      const result = new Promise<AttemptResult>((resolve) => pending.set(id, resolve));
      const signal = sendOptions.signal ? signalNumber(sendOptions.signal, worker) : null;
      // Its own buffer (TextEncoder's), handed over to the thread with the message.
      const body =
        typeof request.body === 'string' ? utf8.encode(request.body) : new Uint8Array(request.body);
      send([id, { url: request.url, headers: request.headers, body }, sendOptions.timeoutMs, signal]);
      return result;
    },
    close() {
      if (closing) return;
      closing = true;
      if (!thread) return;
      if (pending.size === 0) void thread.terminate();
      else thread.postMessage({ close: true } satisfies ToThread);
    },
  };
}
