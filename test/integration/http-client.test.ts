/**
 * The outbound HTTP client against real HTTP(S) receivers on 127.0.0.1: answers, the one
 * deadline, refused and blocked destinations, TLS, redirects, the body cap, shutdown, and the
 * keep-alive pool — each on the calling thread (http-client.ts) and on a worker thread
 * (http-thread.ts, as the service sends).
 */
import fs from 'node:fs';
import path from 'node:path';
import ipaddr from 'ipaddr.js';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createHttpClient,
  RESPONSE_BODY_CAP,
  type HttpClient,
  type HttpClientOptions,
} from '../../src/delivery/http-client.js';
import { createThreadedHttpClient } from '../../src/delivery/http-thread.js';
import type { DeliveryRequest } from '../../src/delivery/delivery-request.js';
import { freePort, REPO_ROOT, waitFor } from '../helpers/process.js';
import { receiverPool } from '../helpers/receiver.js';

const LOOPBACK = [ipaddr.parseCIDR('127.0.0.1/32')];
const receivers = receiverPool();
const receiver = receivers.start;
const clients: HttpClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await receivers.closeAll();
});

let make: (options: HttpClientOptions) => HttpClient = createHttpClient;

function client(options: Partial<HttpClientOptions> = {}): HttpClient {
  const created = make({ allowlist: LOOPBACK, ...options });
  clients.push(created);
  return created;
}

function delivery(url: string): DeliveryRequest {
  return {
    url,
    headers: { 'content-type': 'application/json', 'webhook-id': 'msg_1' },
    body: '{"type":"order.created","data":{"id":1}}',
  };
}

function selfSignedTls() {
  const dir = path.join(REPO_ROOT, 'test/fixtures/tls');
  return {
    key: fs.readFileSync(path.join(dir, 'self-signed.key')),
    cert: fs.readFileSync(path.join(dir, 'self-signed.crt')),
  };
}

describe.each([
  ['on the calling thread', createHttpClient],
  ['on a worker thread', createThreadedHttpClient],
] as const)('the client %s', (_where, maker) => {
  beforeAll(() => {
    make = maker;
  });

  describe('answers', () => {
    it('a 2xx is a success, with its body and kept headers', async () => {
      const r = await receiver({ behaviour: { kind: 'status', status: 202, body: 'thanks' } });
      const result = await client().send(delivery(`${r.url}/hook?x=1`), { timeoutMs: 5000 });
      expect(result).toMatchObject({
        ok: true,
        statusCode: 202,
        error: null,
        blocked: false,
        permanent: false,
        interrupted: false,
        responseBody: 'thanks',
        responseHeaders: { 'content-type': 'text/plain' },
      });
      expect(r.requests).toHaveLength(1);
      expect(r.requests[0]).toMatchObject({
        method: 'POST',
        path: '/hook?x=1',
        body: '{"type":"order.created","data":{"id":1}}',
        headers: { 'content-type': 'application/json', 'webhook-id': 'msg_1' },
      });
    });

    it('a 503 keeps its Retry-After and is not permanent', async () => {
      const r = await receiver({
        behaviour: { kind: 'status', status: 503, body: 'busy', headers: { 'retry-after': '120' } },
      });
      const result = await client().send(delivery(r.url), { timeoutMs: 5000 });
      expect(result).toMatchObject({
        ok: false,
        statusCode: 503,
        error: 'HTTP 503: Service Unavailable',
        permanent: false,
        responseBody: 'busy',
      });
      expect(result.responseHeaders).toMatchObject({ 'retry-after': '120' });
    });

    it('a 302 is not followed; its target is never contacted', async () => {
      const target = await receiver();
      const r = await receiver({
        behaviour: { kind: 'redirect', status: 302, location: `${target.url}/elsewhere` },
      });
      const result = await client().send(delivery(r.url), { timeoutMs: 5000 });
      expect(result).toMatchObject({
        ok: false,
        statusCode: 302,
        error: `redirect (HTTP 302) to ${target.url}/elsewhere not followed`,
        responseHeaders: { location: `${target.url}/elsewhere` },
      });
      expect(target.requests).toHaveLength(0);
      expect(target.connections()).toBe(0);
    });

    it('a 1 MB body is cut to the cap and its connection dropped', async () => {
      const bytes = 1024 * 1024;
      const r = await receiver({ behaviour: { kind: 'huge-body', status: 200, bytes } });
      const http = client();
      const result = await http.send(delivery(r.url), { timeoutMs: 10_000 });
      expect(result).toMatchObject({ ok: true, statusCode: 200 });
      expect(result.responseBody).toHaveLength(RESPONSE_BODY_CAP);
      expect(result.responseBody).toMatch(/^x+$/);
      // Dropped at once, not kept alive for the next request.
      await waitFor(() => (r.openConnections() === 0 ? true : undefined), 2000, 'the connection to close');
      console.log(`1 MB body: attempt took ${result.durationMs} ms`);
    });
  });

  describe('the deadline', () => {
    it('holds when the headers come at once and the body drips', async () => {
      const r = await receiver({ behaviour: { kind: 'drip-body', intervalMs: 50 } });
      const result = await client().send(delivery(r.url), { timeoutMs: 600 });
      expect(result).toMatchObject({ ok: false, statusCode: 200, error: 'timeout after 600 ms' });
      expect(result.durationMs).toBeGreaterThanOrEqual(590);
      expect(result.durationMs).toBeLessThan(1100);
      await waitFor(() => (r.inFlight() === 0 ? true : undefined), 5000, 'the dripping response to close');
    });

    it('holds when the status line itself drips', async () => {
      const r = await receiver({ behaviour: { kind: 'drip', intervalMs: 100 } });
      const result = await client().send(delivery(r.url), { timeoutMs: 600 });
      expect(result).toMatchObject({ ok: false, statusCode: null, error: 'timeout after 600 ms' });
      expect(result.durationMs).toBeLessThan(1100);
    });

    it('holds for a request still waiting for a connection', async () => {
      const r = await receiver({ behaviour: { kind: 'hold-open' } });
      const http = client({ connectionsPerOrigin: 1 });
      const first = http.send(delivery(r.url), { timeoutMs: 10_000 });
      await waitFor(() => (r.requests.length === 1 ? true : undefined), 5000, 'the first request to arrive');
      const queued = await http.send(delivery(r.url), { timeoutMs: 300 });
      expect(queued).toMatchObject({ ok: false, statusCode: null, error: 'timeout after 300 ms' });
      expect(queued.durationMs).toBeLessThan(800);
      http.close();
      await first;
      expect(r.requests).toHaveLength(1);
    });
  });

  describe('failures below HTTP', () => {
    it('connection refused', async () => {
      const port = await freePort();
      const result = await client().send(delivery(`http://127.0.0.1:${port}/`), { timeoutMs: 5000 });
      expect(result).toMatchObject({
        ok: false,
        statusCode: null,
        error: 'connection refused',
        permanent: false,
      });
    });

    it('connection reset in the middle of the response', async () => {
      const r = await receiver({ behaviour: { kind: 'reset-mid-response' } });
      const result = await client().send(delivery(r.url), { timeoutMs: 5000 });
      expect(result).toMatchObject({ ok: false, statusCode: 200, error: 'connection reset' });
    });

    it('an answer that is not HTTP', async () => {
      const r = await receiver({ behaviour: { kind: 'raw', bytes: 'SSH-2.0-OpenSSH_9.6\r\n' } });
      const result = await client().send(delivery(r.url), { timeoutMs: 5000 });
      expect(result.statusCode).toBeNull();
      expect(result.error).toMatch(/^invalid HTTP response: /);
      expect(result.error).not.toContain(r.url);
    });

    it('a self-signed certificate is a TLS error, and nothing is sent', async () => {
      const r = await receiver({ tls: selfSignedTls() });
      const result = await client().send(delivery(r.url), { timeoutMs: 5000 });
      expect(result.statusCode).toBeNull();
      expect(result.error).toMatch(/^TLS error: .*self[- ]signed certificate/);
      expect(r.requests).toHaveLength(0);
    });
  });

  describe('SSRF', () => {
    it('an IP literal outside the allowlist is refused before any connection', async () => {
      const r = await receiver();
      const blocked: [string, string][] = [];
      const http = client({ allowlist: [], onBlocked: (stage, reason) => blocked.push([stage, reason]) });
      const result = await http.send(delivery(`${r.url}/hook`), { timeoutMs: 5000 });
      expect(result).toMatchObject({
        ok: false,
        statusCode: null,
        error: 'destination blocked: 127.0.0.1 is a loopback address',
        blocked: true,
        permanent: true,
      });
      expect(blocked).toEqual([['literal', '127.0.0.1 is a loopback address']]);
      expect(r.connections()).toBe(0);
    });

    it('a name resolving to loopback is refused at connect time, on the resolved address', async () => {
      const r = await receiver();
      const blocked: string[] = [];
      const http = client({ allowlist: [], onBlocked: (stage) => blocked.push(stage) });
      const result = await http.send(delivery(`http://localhost:${r.port}/hook`), { timeoutMs: 5000 });
      expect(result).toMatchObject({ ok: false, statusCode: null, blocked: true, permanent: true });
      expect(result.error).toMatch(/^destination blocked: (127\.0\.0\.1|::1) is a loopback address$/);
      expect(blocked).toEqual(['connect']);
      expect(r.connections()).toBe(0);
    });
  });

  describe('shutdown', () => {
    it('an outer abort ends an attempt in flight as interrupted', async () => {
      const r = await receiver({ behaviour: { kind: 'hold-open' } });
      const stop = new AbortController();
      const pending = client().send(delivery(r.url), { timeoutMs: 10_000, signal: stop.signal });
      await waitFor(() => (r.requests.length === 1 ? true : undefined), 5000, 'the request to arrive');
      stop.abort();
      const result = await pending;
      expect(result).toMatchObject({
        ok: false,
        error: 'interrupted by shutdown',
        interrupted: true,
        permanent: false,
      });
      expect(result.durationMs).toBeLessThan(10_000);
      await waitFor(() => (r.inFlight() === 0 ? true : undefined), 5000, 'the held request to close');
    });

    it('one stop signal shared by many attempts interrupts them all, without a listener warning', async () => {
      const warnings: Error[] = [];
      const onWarning = (warning: Error) => warnings.push(warning);
      process.on('warning', onWarning);
      try {
        const r = await receiver({ behaviour: { kind: 'hold-open' } });
        const http = client();
        const stop = new AbortController();
        const pending = Array.from({ length: 30 }, () =>
          http.send(delivery(r.url), { timeoutMs: 10_000, signal: stop.signal }),
        );
        await waitFor(() => (r.requests.length === 30 ? true : undefined), 5000, 'all requests to arrive');
        stop.abort();
        const results = await Promise.all(pending);
        expect(results.every((result) => result.interrupted)).toBe(true);
        expect(warnings.filter((warning) => warning.name === 'MaxListenersExceededWarning')).toEqual([]);
      } finally {
        process.off('warning', onWarning);
      }
    });

    it('closing the client ends attempts in flight as interrupted', async () => {
      const r = await receiver({ behaviour: { kind: 'hold-open' } });
      const http = client();
      const pending = http.send(delivery(r.url), { timeoutMs: 10_000 });
      await waitFor(() => (r.requests.length === 1 ? true : undefined), 5000, 'the request to arrive');
      http.close();
      expect(await pending).toMatchObject({ error: 'interrupted by shutdown', interrupted: true });
    });

    it('an attempt whose signal is already aborted makes no connection', async () => {
      const r = await receiver();
      const result = await client().send(delivery(r.url), { timeoutMs: 5000, signal: AbortSignal.abort() });
      expect(result).toMatchObject({ error: 'interrupted by shutdown', interrupted: true });
      expect(r.connections()).toBe(0);
    });
  });

  describe('the connection pool', () => {
    it('50 sequential sends reuse few connections', async () => {
      const r = await receiver();
      const http = client();
      for (let i = 0; i < 50; i++) {
        expect(await http.send(delivery(r.url), { timeoutMs: 5000 })).toMatchObject({ ok: true });
      }
      expect(r.requests).toHaveLength(50);
      // undici hands a socket back one event-loop turn after its answer ends, so a send that
      // follows at once opens a second connection; from then on the two take turns.
      expect(r.connections()).toBeLessThanOrEqual(2);
    });

    it('200 concurrent sends to one origin all succeed', async () => {
      const r = await receiver();
      const http = client();
      const results = await Promise.all(
        Array.from({ length: 200 }, () => http.send(delivery(r.url), { timeoutMs: 10_000 })),
      );
      expect(results.filter((result) => !result.ok)).toEqual([]);
      expect(r.requests).toHaveLength(200);
    });

    it('connectionsPerOrigin bounds the connections; the rest wait their turn', async () => {
      const r = await receiver({ behaviour: { kind: 'status', status: 200, body: 'ok', delayMs: 5 } });
      const http = client({ connectionsPerOrigin: 8 });
      const results = await Promise.all(
        Array.from({ length: 200 }, () => http.send(delivery(r.url), { timeoutMs: 10_000 })),
      );
      expect(results.filter((result) => !result.ok)).toEqual([]);
      expect(r.connections()).toBeLessThanOrEqual(8);
      expect(r.maxInFlight()).toBeLessThanOrEqual(8);
    });
  });
});

describe('the worker thread', () => {
  it('a body crosses as its UTF-8 bytes: 64 bodies of ~512 KB sent together arrive byte for byte', async () => {
    const r = await receiver();
    const http = createThreadedHttpClient({ allowlist: LOOPBACK });
    clients.push(http);
    const bodies = Array.from({ length: 64 }, (_, i) =>
      JSON.stringify({ type: 'big', data: { i, text: `€ ü 😀 ${i} `.repeat(512 * 64) } }),
    );
    const results = await Promise.all(
      bodies.map((body) => http.send({ ...delivery(r.url), body }, { timeoutMs: 20_000 })),
    );
    expect(results.filter((result) => !result.ok)).toEqual([]);
    expect(new Set(r.requests.map((request) => request.body))).toEqual(new Set(bodies));
  });

  it('a thread that dies ends its attempts as failed (to be retried), and the next attempt starts a new one', async () => {
    const r = await receiver();
    // An allowlist entry the thread cannot parse: each thread throws as it starts, as one with
    // a fault would at any moment.
    const unparsable = { toString: () => 'not an address' } as unknown as ipaddr.IPv4;
    const http = createThreadedHttpClient({ allowlist: [[unparsable, 32]] });
    clients.push(http);
    const failed = {
      ok: false,
      statusCode: null,
      error: expect.stringMatching(/^delivery thread stopped: /) as unknown,
      interrupted: false,
      permanent: false,
    };
    const first = await Promise.all([1, 2, 3].map(() => http.send(delivery(r.url), { timeoutMs: 5000 })));
    expect(first).toEqual([failed, failed, failed].map((f) => expect.objectContaining(f)));
    expect(first[0]!.error).toMatch(/ipaddr/);
    // A new thread, which fails the same way. Had the client kept the dead one, this attempt
    // would have been posted to it and ended only by its exit ("exit code 1"), or never.
    expect(await http.send(delivery(r.url), { timeoutMs: 5000 })).toMatchObject({
      ...failed,
      error: first[0]!.error,
    });
    expect(r.requests).toHaveLength(0);
  });
});
