/**
 * WEBHOOK_HTTPS_ONLY (on by default in production): http:// URLs are refused at registration and
 * when a PATCH changes the URL, with a 400 that says why; webhooks registered over http before
 * keep being delivered.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queueDelivery, waitForDeliveryStatus } from '../helpers/fixtures.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
let token: string;
let receiver: Receiver;

beforeAll(async () => {
  svc = await startTestService({ WEBHOOK_HTTPS_ONLY: 'true' });
  token = await svc.token('https-tenant');
  receiver = await startReceiver();
});
afterAll(async () => {
  await receiver?.close();
  await svc?.stop();
});

const refusal = {
  code: 'invalid_request',
  message:
    'The webhook URL must use https: this service sends webhooks over https only (WEBHOOK_HTTPS_ONLY).',
  details: [
    {
      field: '/url',
      message: 'must use https: this service sends webhooks over https only (WEBHOOK_HTTPS_ONLY)',
    },
  ],
};

describe('WEBHOOK_HTTPS_ONLY=true', () => {
  it('refuses http:// at registration with a 400 that says why; https:// is accepted', async () => {
    const http = await svc.call('POST', '/webhooks', {
      token,
      body: { url: 'http://example.com/hook', event_types: ['*'] },
    });
    expect(http.status).toBe(400);
    expect(http.body.error).toEqual(refusal);
    const https = await svc.call('POST', '/webhooks', {
      token,
      body: { url: 'https://example.com/hook', event_types: ['*'] },
    });
    expect(https.status).toBe(201);
    const allowlisted = await svc.call('POST', '/webhooks', {
      token,
      body: { url: `https://127.0.0.1:${receiver.port}/hook`, event_types: ['never.sent'] },
    });
    expect(allowlisted.status).toBe(201);

    const patched = await svc.call('PATCH', `/webhooks/${https.body.id}`, {
      token,
      body: { url: 'http://example.com/other' },
    });
    expect(patched.status).toBe(400);
    expect(patched.body.error).toEqual(refusal);
  });

  it('a webhook registered over http before keeps being delivered, and other fields may change', async () => {
    const queued = await queueDelivery(svc.service.database.db, {
      url: receiver.url,
      tenantId: 'https-tenant',
    });
    expect(receiver.url).toMatch(/^http:\/\//);
    await waitForDeliveryStatus(svc.service.database.db, queued.deliveryId, ['succeeded']);
    const patched = await svc.call('PATCH', `/webhooks/${queued.webhookId}`, {
      token,
      body: { description: 'still http until its URL changes' },
    });
    expect(patched.status).toBe(200);
  });
});
