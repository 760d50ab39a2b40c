/**
 * The outbound HTTP client: one POST per attempt through one undici `Agent` (a keep-alive pool
 * per origin) whose `lookup` is the SSRF guard, so the address checked is the address connected
 * to. One deadline covers connect, headers and body, so a receiver that drips bytes cannot
 * stretch it. Redirects are never followed. At most `RESPONSE_BODY_CAP` bytes of the answer are
 * read; then the connection is dropped, so a huge or endless body costs no more than that.
 *
 * Every outcome becomes an `AttemptResult` with a short error in words; nothing here throws for
 * a receiver's misbehaviour.
 */
import { EventEmitter } from 'node:events';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { Agent, type Dispatcher } from 'undici';
import type { Cidr } from './address-policy.js';
import type { DeliveryRequest } from './delivery-request.js';
import { checkLiteralDestination, createGuardedLookup } from './ssrf-guard.js';

/** Bytes of the response body kept (and read at all). */
export const RESPONSE_BODY_CAP = 4096;

/** Response headers worth keeping with an attempt. */
const KEPT_HEADERS = ['content-type', 'content-length', 'retry-after', 'location'] as const;

/**
 * Idle pooled sockets are closed after this, before the common 5 s server keep-alive timeout, so
 * we rarely write to a socket the server is closing. A server's own shorter `Keep-Alive: timeout`
 * still wins.
 */
const KEEP_ALIVE_MS = 4000;

/** Longer than any attempt's deadline (at most 30 s): undici's own timers must never be the ones that fire. */
const UNDICI_TIMEOUT_MS = 60_000;

const utf8 = new TextDecoder('utf-8');

export interface AttemptResult {
  /** A 2xx whose answer arrived in time. */
  ok: boolean;
  /** HTTP status; null when no answer came. */
  statusCode: number | null;
  /** Null on success; else e.g. `HTTP 503: Service Unavailable`, `timeout after 10000 ms`. */
  error: string | null;
  /** The destination was refused by the SSRF policy; no connection was made. */
  blocked: boolean;
  /** Retrying cannot help (a refused destination, an unusable URL): dead-letter at once. */
  permanent: boolean;
  /** Cut short by `signal` (the process is stopping), not by the receiver. */
  interrupted: boolean;
  durationMs: number;
  /** First `RESPONSE_BODY_CAP` bytes, as text. */
  responseBody: string | null;
  responseHeaders: Record<string, string> | null;
}

export interface SendOptions {
  timeoutMs: number;
  /** Aborts the attempt from outside (graceful stop); the result is then `interrupted`. */
  signal?: AbortSignal;
}

/** A delivery request as sent: its body as built (text) or as the bytes of that text. */
export type OutboundRequest = Omit<DeliveryRequest, 'body'> & { body: string | Uint8Array };

export interface HttpClient {
  send(request: OutboundRequest, options: SendOptions): Promise<AttemptResult>;
  /** Closes pooled connections. */
  close(): void;
}

export interface HttpClientOptions {
  allowlist: readonly Cidr[];
  /** Called once per refused destination, with `literal` (IP in the URL) or `connect` (resolved name). */
  onBlocked?: (stage: 'literal' | 'connect', reason: string) => void;
  /** Most connections per origin; more requests to one origin wait in its pool (inside their deadline). */
  connectionsPerOrigin?: number;
}

export function createHttpClient(options: HttpClientOptions): HttpClient {
  /**
   * Attempts in flight per outer signal. Many attempts share one stop signal; one listener each
   * would make every removal a walk of the others, and Node warns past 10 listeners.
   */
  const stopWatchers = new WeakMap<AbortSignal, Set<() => void>>();
  function watchStop(signal: AbortSignal, onStop: () => void): () => void {
    const watchers = stopWatchers.get(signal) ?? startWatching(signal);
    watchers.add(onStop);
    return () => watchers.delete(onStop);
  }
  function startWatching(signal: AbortSignal): Set<() => void> {
    const watchers = new Set<() => void>();
    signal.addEventListener('abort', () => watchers.forEach((stop) => stop()), { once: true });
    stopWatchers.set(signal, watchers);
    return watchers;
  }

  const lookup = createGuardedLookup(options.allowlist, (reason) => options.onBlocked?.('connect', reason));
  const agent = new Agent({
    connections: options.connectionsPerOrigin ?? 512,
    pipelining: 1,
    keepAliveTimeout: KEEP_ALIVE_MS,
    keepAliveMaxTimeout: KEEP_ALIVE_MS,
    headersTimeout: UNDICI_TIMEOUT_MS,
    bodyTimeout: UNDICI_TIMEOUT_MS,
    // Passed through to net.connect / tls.connect by undici's connector.
    connect: { lookup, timeout: 30_000, minVersion: 'TLSv1.2' },
  });

  async function send(request: OutboundRequest, sendOptions: SendOptions): Promise<AttemptResult> {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    const url = URL.canParse(request.url) ? new URL(request.url) : undefined;
    // The API accepts only http(s) URLs, but a row can be edited by hand.
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      return attemptResult({
        error: url ? `unsupported URL scheme ${url.protocol}` : 'invalid URL',
        permanent: true,
        durationMs: elapsed(),
      });
    }

    const literalRefusal = checkLiteralDestination(url, options.allowlist);
    if (literalRefusal !== undefined) {
      options.onBlocked?.('literal', literalRefusal);
      return attemptResult({
        error: `destination blocked: ${literalRefusal}`,
        blocked: true,
        permanent: true,
        durationMs: elapsed(),
      });
    }

    const outer = sendOptions.signal;
    if (outer?.aborted) {
      return attemptResult({ error: 'interrupted by shutdown', interrupted: true, durationMs: elapsed() });
    }

    let statusCode: number | null = null;
    let responseHeaders: Record<string, string> | null = null;
    // undici takes an EventEmitter as `signal`: per attempt it costs a fraction of an
    // AbortController with a listener on its AbortSignal.
    const abort = new EventEmitter();

    const exchange = async (): Promise<AttemptResult> => {
      const response = await agent.request({
        origin: url.origin,
        path: url.pathname + url.search,
        method: 'POST',
        headers: request.headers,
        body: request.body,
        signal: abort,
      });
      statusCode = response.statusCode;
      responseHeaders = keptHeaders(response.headers);
      const responseBody = await readCapped(response.body, RESPONSE_BODY_CAP);
      const durationMs = elapsed();
      if (statusCode >= 200 && statusCode < 300) {
        return attemptResult({
          ok: true,
          error: null,
          statusCode,
          durationMs,
          responseBody,
          responseHeaders,
        });
      }
      return attemptResult({
        error: describeStatus(statusCode, response.statusText, responseHeaders?.location),
        statusCode,
        durationMs,
        responseBody,
        responseHeaders,
      });
    };

    const failure = (err: unknown): AttemptResult => {
      const durationMs = elapsed();
      if (isClientClosed(err)) {
        return attemptResult({ error: 'interrupted by shutdown', interrupted: true, statusCode, durationMs });
      }
      const described = describeError(err, url.hostname);
      return attemptResult({
        ...described,
        permanent: described.blocked ?? false,
        statusCode,
        durationMs,
        responseHeaders,
      });
    };

    // The deadline and a stop settle the attempt themselves rather than wait for undici to act on
    // the abort: a request still queued for a connection (pool full, connect under way) hears it
    // only once it reaches a socket.
    return new Promise<AttemptResult>((resolve) => {
      let settled = false;
      let stopWatching: (() => void) | undefined;
      const timer = setTimeout(() => {
        abort.emit('abort');
        settle(
          attemptResult({
            error: `timeout after ${sendOptions.timeoutMs} ms`,
            statusCode,
            durationMs: elapsed(),
            responseHeaders,
          }),
        );
      }, sendOptions.timeoutMs);
      function settle(result: AttemptResult): void {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        stopWatching?.();
        resolve(result);
      }
      if (outer) {
        stopWatching = watchStop(outer, () => {
          abort.emit('abort');
          settle(
            attemptResult({
              error: 'interrupted by shutdown',
              interrupted: true,
              statusCode,
              durationMs: elapsed(),
            }),
          );
        });
      }
      exchange().then(settle, (err: unknown) => settle(failure(err)));
    });
  }

  return {
    send,
    close() {
      agent.destroy().catch(() => undefined);
    },
  };
}

/** An attempt's result: a failure with no answer, unless `fields` say otherwise. */
export function attemptResult(
  fields: Partial<AttemptResult> & { error: string | null; durationMs: number },
): AttemptResult {
  return {
    ok: false,
    statusCode: null,
    blocked: false,
    permanent: false,
    interrupted: false,
    responseBody: null,
    responseHeaders: null,
    ...fields,
  };
}

/**
 * Reads at most `cap` bytes. A body that ends within the cap is read to its end, so the socket
 * goes back to the pool; a longer one is destroyed, which drops the connection.
 */
function readCapped(body: Dispatcher.ResponseData['body'], cap: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const finish = () => {
      const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
      // PostgreSQL text cannot hold NUL; a cut multi-byte character becomes U+FFFD.
      resolve(utf8.decode(bytes.subarray(0, cap)).replaceAll('\u0000', ''));
    };
    body.on('data', (chunk: Buffer) => {
      if (total > cap) return;
      chunks.push(chunk);
      total += chunk.length;
      if (total > cap) {
        // Destroying before the end emits an abort error; the `error` listener below hears it.
        body.destroy();
        finish();
      }
    });
    body.once('end', finish);
    body.once('error', reject);
  });
}

function keptHeaders(headers: Dispatcher.ResponseData['headers']): Record<string, string> | null {
  let kept: Record<string, string> | null = null;
  for (const name of KEPT_HEADERS) {
    const raw = headers[name];
    const value = Array.isArray(raw) ? raw[0] : raw;
    if (value !== undefined) (kept ??= {})[name] = value.slice(0, 500);
  }
  return kept;
}

function describeStatus(status: number, statusText: string, location: string | undefined): string {
  if (status >= 300 && status < 400 && location) {
    return `redirect (HTTP ${status}) to ${location.slice(0, 300)} not followed`;
  }
  const reason = http.STATUS_CODES[status] ?? (statusText.trim().slice(0, 100) || 'Unknown Status');
  return `HTTP ${status}: ${reason}`;
}

/** The agent was closed under the request: the process is stopping. */
function isClientClosed(err: unknown): boolean {
  const code = errorCode(err);
  return code === 'UND_ERR_DESTROYED' || code === 'UND_ERR_CLOSED';
}

/** The words for a failure below HTTP: refused, reset, DNS, TLS, blocked. */
export function describeError(err: unknown, host: string): { error: string; blocked?: boolean } {
  const code = errorCode(err);
  const reason = errorReason(err);
  switch (code) {
    case 'ERR_DESTINATION_BLOCKED':
      return {
        error: reason.startsWith('destination blocked') ? reason : `destination blocked: ${reason}`,
        blocked: true,
      };
    case 'ECONNREFUSED':
      return { error: 'connection refused' };
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
      return { error: 'connection reset' };
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
    case 'EAI_NODATA':
    case 'EAI_NONAME':
      return { error: `DNS lookup failed for ${host}` };
    case 'ETIMEDOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return { error: 'connection timed out' };
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
      return { error: 'response timed out' };
    case 'EHOSTUNREACH':
      return { error: 'host unreachable' };
    case 'ENETUNREACH':
      return { error: 'network unreachable' };
    case 'UND_ERR_HEADERS_OVERFLOW':
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
      return { error: `invalid HTTP response: ${reason}` };
    case 'UND_ERR_INVALID_ARG':
      // undici raises this only for what we send (a header, the path), never for an answer.
      return { error: `invalid request: ${reason}` };
  }
  if (code?.startsWith('HPE_')) return { error: `invalid HTTP response: ${parserReason(reason, code)}` };
  if (code && /CERT|SSL|TLS|EPROTO|UNABLE_TO_|SELF_SIGNED/i.test(code)) {
    // OpenSSL's own errors carry a message like `80ACA9E3…:error:0A00010B:SSL routines:…:wrong
    // version number:…/ssl3_record.c:350:`, and the readable part in `reason`.
    const openSslReason = (err as { reason?: unknown }).reason;
    return { error: `TLS error: ${typeof openSslReason === 'string' ? openSslReason : reason}` };
  }
  if (reason === 'other side closed') return { error: 'connection reset' };
  if (reason.startsWith(PARSER_PREFIX))
    return { error: `invalid HTTP response: ${parserReason(reason, code)}` };
  return { error: `request failed: ${reason}`.slice(0, 300) };
}

const PARSER_PREFIX = 'Response does not match the HTTP/1.1 protocol';

/** `Response does not match the HTTP/1.1 protocol (Invalid header value char)` → `Invalid header value char`. */
function parserReason(reason: string, code: string | undefined): string {
  if (!reason.startsWith(PARSER_PREFIX)) return reason || code || 'unparsable';
  const detail = /^\((.*)\)$/s.exec(reason.slice(PARSER_PREFIX.length).trim());
  return detail ? detail[1]! : reason;
}

function errorCode(err: unknown): string | undefined {
  for (let current: unknown = err, depth = 0; current && depth < 5; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * The error's message, without any URL in it. Node's AggregateError from a failed connect to
 * several addresses has an empty message; its first error then speaks for it.
 */
function errorReason(err: unknown): string {
  let message = err instanceof Error ? err.message : String(err);
  if (!message && err instanceof AggregateError) {
    const first: unknown = err.errors[0];
    message = first instanceof Error ? first.message : '';
  }
  return message.replace(/\b[a-z][a-z0-9+.-]*:\/\/\S*/gi, '<url>').slice(0, 200);
}
