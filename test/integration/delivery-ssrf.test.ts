/**
 * SSRF at connect time: with an empty allowlist, a destination that is (or resolves to) a
 * loopback address is never connected to, and the delivery goes to the DLQ at once.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { attemptRows, dlqRows, queueDelivery, waitForDeliveryStatus } from '../helpers/fixtures.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
let r: Receiver;
const db = () => svc.service.database.db;

beforeAll(async () => {
  svc = await startTestService({ RETRY_SCHEDULE: '0.05,0.1', SSRF_ALLOWLIST: '' });
});
afterEach(async () => {
  await r?.close();
});
afterAll(async () => {
  await svc?.stop();
});

async function deadLetter(deliveryId: string) {
  await waitForDeliveryStatus(db(), deliveryId, ['dead'], 10_000, 'the delivery to be dead-lettered');
  return dlqRows(db(), deliveryId);
}

describe('SSRF guard', () => {
  it('a host name resolving to 127.0.0.1 is never connected to, and is dead-lettered at once', async () => {
    r = await startReceiver();
    const queued = await queueDelivery(db(), { url: `http://localhost:${r.port}/hook` });
    const [letter] = await deadLetter(queued.deliveryId);
    expect(letter).toMatchObject({ attempts: 1 });
    expect(letter!.last_error).toMatch(/^destination blocked: (127\.0\.0\.1|::1) is a loopback address$/);
    const attempts = await attemptRows(db(), queued.deliveryId);
    expect(attempts).toHaveLength(1);
    expect(attempts[0]).toMatchObject({ status_code: null, error: letter!.last_error });
    expect(r.connections()).toBe(0);
    expect(r.requests).toHaveLength(0);
  });

  it('a literal loopback URL is refused before connecting', async () => {
    r = await startReceiver();
    const queued = await queueDelivery(db(), { url: `${r.url}/hook` });
    const [letter] = await deadLetter(queued.deliveryId);
    expect(letter).toMatchObject({
      attempts: 1,
      last_error: 'destination blocked: 127.0.0.1 is a loopback address',
    });
    expect(r.connections()).toBe(0);
  });

  it('counts the blocks by stage', async () => {
    const metrics = await svc.service.metrics.registry.metrics();
    expect(metrics).toMatch(/webhook_ssrf_blocked_total\{stage="connect"\} [1-9]/);
    expect(metrics).toMatch(/webhook_ssrf_blocked_total\{stage="literal"\} [1-9]/);
  });
});
