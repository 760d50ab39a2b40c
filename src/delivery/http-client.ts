/**
 * The outbound HTTP client: one POST per attempt, through our own keep-alive agents (one
 * connection pool per host:port) whose `lookup` is the SSRF guard. One deadline covers connect,
 * headers and body, so a receiver that drips bytes cannot stretch it. Redirects are never
 * followed. At most `RESPONSE_BODY_CAP` bytes of the answer are read; then the connection is
 * dropped, so a huge or endless body costs no more than that.
 *
 * Every outcome becomes an `AttemptResult` with a short error in words; nothing here throws for
 * a receiver's misbehaviour.
 */
import http from 'node:http';
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import fetch from 'node-fetch';
import type { Cidr } from './address-policy.js';
import type { DeliveryRequest } from './delivery-request.js';
import { checkLiteralDestination, createGuardedLookup } from './ssrf-guard.js';

/** Bytes of the response body kept (and read at all). */
export const RESPONSE_BODY_CAP = 4096;

/** Response headers worth keeping with an attempt. */
const KEPT_HEADERS = ['content-type', 'content-length', 'retry-after', 'location'] as const;

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

export interface HttpClient {
  send(request: DeliveryRequest, options: SendOptions): Promise<AttemptResult>;
  /** Closes pooled connections. */
  close(): void;
}

export interface HttpClientOptions {
  allowlist: readonly Cidr[];
  /** Called once per refused destination, with `literal` (IP in the URL) or `connect` (resolved name). */
  onBlocked?: (stage: 'literal' | 'connect', reason: string) => void;
  /** Most sockets per host:port; more requests to one host wait in the agent (inside their deadline). */
  maxSocketsPerHost?: number;
}

export function createHttpClient(options: HttpClientOptions): HttpClient {
  const lookup = createGuardedLookup(options.allowlist, (reason) => options.onBlocked?.('connect', reason));
  const agentOptions = {
    keepAlive: true,
    maxSockets: options.maxSocketsPerHost ?? 100,
    maxFreeSockets: 32,
    scheduling: 'lifo' as const,
    // Idle pooled sockets are closed before the common 5 s server keep-alive timeout, so we
    // rarely write to a socket the server is closing.
    timeout: 4000,
    lookup,
  };
  const httpAgent = new http.Agent(agentOptions as http.AgentOptions);
  const httpsAgent = new https.Agent({ ...agentOptions, minVersion: 'TLSv1.2' } as https.AgentOptions);

  async function send(request: DeliveryRequest, sendOptions: SendOptions): Promise<AttemptResult> {
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

    const controller = new AbortController();
    let timedOut = false;
    let interrupted = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, sendOptions.timeoutMs);
    const onOuterAbort = () => {
      interrupted = true;
      controller.abort();
    };
    sendOptions.signal?.addEventListener('abort', onOuterAbort, { once: true });
    if (sendOptions.signal?.aborted) onOuterAbort();

    let statusCode: number | null = null;
    let responseHeaders: Record<string, string> | null = null;
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: request.headers,
        body: request.body,
        redirect: 'manual',
        compress: false,
        agent: (parsed: URL) => (parsed.protocol === 'https:' ? httpsAgent : httpAgent),
        signal: controller.signal,
      });
      statusCode = response.status;
      responseHeaders = keptHeaders(response.headers);
      // node-fetch emits 'error' on the body if the deadline fires later; never let that go unheard.
      response.body?.on('error', () => undefined);
      const body = response.body ? await readCapped(response.body, RESPONSE_BODY_CAP) : '';
      const durationMs = elapsed();
      if (statusCode >= 200 && statusCode < 300) {
        return attemptResult({
          ok: true,
          error: null,
          statusCode,
          durationMs,
          responseBody: body,
          responseHeaders,
        });
      }
      return attemptResult({
        error: describeStatus(statusCode, response.statusText, response.headers.get('location')),
        statusCode,
        durationMs,
        responseBody: body,
        responseHeaders,
      });
    } catch (err) {
      const durationMs = elapsed();
      if (interrupted) {
        return attemptResult({ error: 'interrupted by shutdown', interrupted: true, statusCode, durationMs });
      }
      if (timedOut) {
        return attemptResult({
          error: `timeout after ${sendOptions.timeoutMs} ms`,
          statusCode,
          durationMs,
          responseHeaders,
        });
      }
      const described = describeError(err, url.hostname);
      return attemptResult({
        ...described,
        permanent: described.blocked ?? false,
        statusCode,
        durationMs,
        responseHeaders,
      });
    } finally {
      clearTimeout(timer);
      sendOptions.signal?.removeEventListener('abort', onOuterAbort);
    }
  }

  return {
    send,
    close() {
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}

function attemptResult(
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

/** Reads at most `cap` bytes, then destroys the stream (and with it the connection). */
async function readCapped(body: NodeJS.ReadableStream, cap: number): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body as AsyncIterable<Buffer | string>) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    chunks.push(buffer);
    total += buffer.length;
    // Leaving the loop early destroys the stream: the rest is never read.
    if (total >= cap) break;
  }
  const bytes = Buffer.concat(chunks, total).subarray(0, cap);
  // PostgreSQL text cannot hold NUL; a cut multi-byte character becomes U+FFFD.
  return new TextDecoder('utf-8').decode(bytes).replaceAll('\u0000', '');
}

function keptHeaders(headers: { get(name: string): string | null }): Record<string, string> | null {
  const kept: Record<string, string> = {};
  for (const name of KEPT_HEADERS) {
    const value = headers.get(name);
    if (value !== null) kept[name] = value.slice(0, 500);
  }
  return Object.keys(kept).length > 0 ? kept : null;
}

function describeStatus(status: number, statusText: string, location: string | null): string {
  if (status >= 300 && status < 400 && location) {
    return `redirect (HTTP ${status}) to ${location.slice(0, 300)} not followed`;
  }
  const reason = http.STATUS_CODES[status] ?? (statusText.trim().slice(0, 100) || 'Unknown Status');
  return `HTTP ${status}: ${reason}`;
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
    case 'ERR_STREAM_PREMATURE_CLOSE':
    case 'UND_ERR_SOCKET':
      return { error: 'connection reset' };
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
    case 'EAI_NODATA':
    case 'EAI_NONAME':
      return { error: `DNS lookup failed for ${host}` };
    case 'ETIMEDOUT':
      return { error: 'connection timed out' };
    case 'EHOSTUNREACH':
      return { error: 'host unreachable' };
    case 'ENETUNREACH':
      return { error: 'network unreachable' };
    case 'HPE_INVALID_CONSTANT':
    case 'HPE_INVALID_STATUS':
    case 'HPE_INVALID_HEADER_TOKEN':
    case 'HPE_HEADER_OVERFLOW':
      return { error: `invalid HTTP response: ${reason}` };
  }
  if (code && /CERT|SSL|TLS|EPROTO|UNABLE_TO_|SELF_SIGNED/i.test(code))
    return { error: `TLS error: ${reason}` };
  if (reason === 'Premature close') return { error: 'connection reset' };
  return { error: `request failed: ${reason}`.slice(0, 300) };
}

function errorCode(err: unknown): string | undefined {
  for (let current: unknown = err, depth = 0; current && depth < 5; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** The underlying reason, without the URL node-fetch puts in front of it. */
function errorReason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const match = /reason: (.*)$/s.exec(message);
  return (match ? match[1]! : message).slice(0, 200);
}
