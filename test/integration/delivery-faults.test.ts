/**
 * Receivers that misbehave. Each case is exactly one failed attempt with a clear recorded error
 * (the one retry is scheduled far away), and the service stays healthy.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RESPONSE_BODY_CAP } from '../../src/delivery/http-client.js';
import { attemptRows, queueDelivery, waitForDeliveryStatus, type AttemptRow } from '../helpers/fixtures.js';
import { freePort, REPO_ROOT, waitFor } from '../helpers/process.js';
import { receiverPool } from '../helpers/receiver.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
const receivers = receiverPool();
const receiver = receivers.start;
const db = () => svc.service.database.db;

beforeAll(async () => {
  svc = await startTestService({ RETRY_SCHEDULE: '600', SSRF_ALLOWLIST: '127.0.0.1/32' });
});
afterEach(async () => {
  const health = await svc.call('GET', '/health');
  expect(health.status).toBe(200);
  await receivers.closeAll();
});
afterAll(async () => {
  await svc?.stop();
});

/** Queues a delivery to `url` and waits for its one attempt; checks it is a failed attempt with a retry scheduled. */
async function oneFailedAttempt(url: string, options: { timeoutMs?: number } = {}): Promise<AttemptRow> {
  const queued = await queueDelivery(db(), { url, timeoutMs: options.timeoutMs });
  const row = await waitForDeliveryStatus(
    db(),
    queued.deliveryId,
    ['failed'],
    20_000,
    'the first attempt to fail',
  );
  const attempts = await attemptRows(db(), queued.deliveryId);
  expect(attempts).toHaveLength(1);
  const attempt = attempts[0]!;
  expect(row).toMatchObject({
    attempt_count: 1,
    last_error: attempt.error,
    last_status_code: attempt.status_code,
  });
  expect(row.next_attempt_at!.getTime()).toBeGreaterThan(Date.now() + 500_000);
  return attempt;
}

describe('each fault is one failed attempt with a clear error', () => {
  it('HTTP 500', async () => {
    const r = await receiver({ behaviour: { kind: 'status', status: 500, body: 'internal oops' } });
    const attempt = await oneFailedAttempt(r.url);
    expect(attempt).toMatchObject({
      status_code: 500,
      error: 'HTTP 500: Internal Server Error',
      response_body: 'internal oops',
    });
  });

  it('connection refused', async () => {
    const port = await freePort();
    const attempt = await oneFailedAttempt(`http://127.0.0.1:${port}/`);
    expect(attempt).toMatchObject({ status_code: null, error: 'connection refused' });
  });

  it('connection reset in the middle of the response', async () => {
    const r = await receiver({ behaviour: { kind: 'reset-mid-response' } });
    const attempt = await oneFailedAttempt(r.url);
    expect(attempt.error).toBe('connection reset');
    expect(r.requests).toHaveLength(1);
  });

  it('a response that never comes: timeout', async () => {
    const r = await receiver({ behaviour: { kind: 'hold-open' } });
    const attempt = await oneFailedAttempt(r.url, { timeoutMs: 300 });
    expect(attempt).toMatchObject({ status_code: null, error: 'timeout after 300 ms' });
    expect(attempt.duration_ms).toBeGreaterThanOrEqual(290);
    // The connection was given up, not left open.
    await waitFor(() => (r.inFlight() === 0 ? true : undefined), 5000, 'the held request to close');
  });

  it('a slow drip of one byte a second cannot stretch the deadline', async () => {
    const r = await receiver({ behaviour: { kind: 'drip', intervalMs: 1000 } });
    const attempt = await oneFailedAttempt(r.url, { timeoutMs: 1500 });
    expect(attempt).toMatchObject({ status_code: null, error: 'timeout after 1500 ms' });
    console.log(`slow drip (status line): attempt ended after ${attempt.duration_ms} ms`);
  });

  it('a slow drip of the body after a 200 is a timeout too', async () => {
    const r = await receiver({ behaviour: { kind: 'drip-body', intervalMs: 1000 } });
    const attempt = await oneFailedAttempt(r.url, { timeoutMs: 1500 });
    expect(attempt).toMatchObject({ status_code: 200, error: 'timeout after 1500 ms' });
  });

  it('a redirect is not followed; its target is never contacted', async () => {
    const target = await receiver();
    const r = await receiver({
      behaviour: { kind: 'redirect', status: 302, location: `${target.url}/elsewhere` },
    });
    const attempt = await oneFailedAttempt(r.url);
    expect(attempt).toMatchObject({
      status_code: 302,
      error: `redirect (HTTP 302) to ${target.url}/elsewhere not followed`,
    });
    expect(attempt.response_headers).toMatchObject({ location: `${target.url}/elsewhere` });
    expect(target.requests).toHaveLength(0);
    expect(target.connections()).toBe(0);
  });

  it('a 50 MB body is not read whole', async () => {
    const bytes = 50 * 1024 * 1024;
    const r = await receiver({ behaviour: { kind: 'huge-body', status: 500, bytes } });
    const attempt = await oneFailedAttempt(r.url);
    expect(attempt.error).toBe('HTTP 500: Internal Server Error');
    expect(Buffer.byteLength(attempt.response_body ?? '')).toBeLessThanOrEqual(RESPONSE_BODY_CAP);
    expect(attempt.response_body).toMatch(/^x+$/);
    const huge = r.hugeBodies[0]!;
    await huge.done;
    console.log(
      `50 MB body: receiver wrote ${(huge.written / 1024 / 1024).toFixed(1)} MB before the connection closed; attempt took ${attempt.duration_ms} ms`,
    );
    expect(huge.closedEarly).toBe(true);
    expect(huge.written).toBeLessThan(bytes);
  });

  it('invalid TLS (a self-signed certificate)', async () => {
    const tlsDir = path.join(REPO_ROOT, 'test/fixtures/tls');
    const r = await receiver({
      tls: {
        key: fs.readFileSync(path.join(tlsDir, 'self-signed.key')),
        cert: fs.readFileSync(path.join(tlsDir, 'self-signed.crt')),
      },
    });
    const attempt = await oneFailedAttempt(r.url);
    expect(attempt.status_code).toBeNull();
    expect(attempt.error).toMatch(/^TLS error: .*self[- ]signed certificate/);
    expect(r.requests).toHaveLength(0);
  });

  it('a host name that does not resolve', async () => {
    const attempt = await oneFailedAttempt('http://no-such-host.invalid/hook');
    expect(attempt).toMatchObject({ status_code: null, error: 'DNS lookup failed for no-such-host.invalid' });
  });
});

describe('successes that misbehave a little', () => {
  it('a 2xx with a 50 MB body succeeds after reading only the first 4 KiB', async () => {
    const bytes = 50 * 1024 * 1024;
    const r = await receiver({ behaviour: { kind: 'huge-body', status: 200, bytes } });
    const queued = await queueDelivery(db(), { url: r.url });
    await waitForDeliveryStatus(db(), queued.deliveryId, ['succeeded'], 20_000, 'success');
    const [attempt] = await attemptRows(db(), queued.deliveryId);
    expect(attempt).toMatchObject({ status_code: 200, error: null });
    expect(attempt!.response_body).toHaveLength(RESPONSE_BODY_CAP);
    await r.hugeBodies[0]!.done;
    expect(r.hugeBodies[0]!.closedEarly).toBe(true);
  });
});
