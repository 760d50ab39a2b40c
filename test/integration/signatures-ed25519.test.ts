/**
 * ed25519 webhooks (Standard Webhooks `v1a`): the API answers a `whpk_` public key and never a
 * secret; deliveries verify with that key (Node's crypto.verify, as docs/api.md shows receivers)
 * and not with another; a rotation sends both signatures for the overlap.
 */
import { createPublicKey, generateKeyPairSync, verify, type KeyObject } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  webhookSecretSchema,
  webhookViewSchema,
  webhookWithSecretSchema,
} from '../../src/webhooks/webhook-schemas.js';
import { waitForDeliveryStatus } from '../helpers/fixtures.js';
import { receiverPool } from '../helpers/receiver.js';
import { expectSchema } from '../helpers/schema.js';
import { startTestService, type TestService } from '../helpers/service.js';

const receivers = receiverPool();
let svc: TestService;
let token: string;

beforeAll(async () => {
  svc = await startTestService();
  token = await svc.token('ed-tenant');
});
afterEach(() => receivers.closeAll());
afterAll(() => svc?.stop());

/** A `whpk_` key as crypto.verify takes it: the raw 32 bytes as a JWK. */
function publicKey(whpk: string): KeyObject {
  const x = Buffer.from(whpk.slice('whpk_'.length), 'base64').toString('base64url');
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' });
}

/** Whether any `v1a` signature of the header verifies with the key: the receiver's check. */
function verifies(whpk: string | KeyObject, headers: Record<string, string>, body: string): boolean {
  const key = typeof whpk === 'string' ? publicKey(whpk) : whpk;
  const content = Buffer.from(`${headers['webhook-id']}.${headers['webhook-timestamp']}.${body}`);
  return headers['webhook-signature']!.split(' ')
    .filter((signature) => signature.startsWith('v1a,'))
    .some((signature) => verify(null, content, key, Buffer.from(signature.slice(4), 'base64')));
}

async function deliverOne(type: string): Promise<{ headers: Record<string, string>; body: string }> {
  const receiver = await receivers.start();
  const created = await svc.call('POST', '/webhooks', {
    token,
    body: { url: receiver.url, event_types: [type], signature_type: 'ed25519' },
  });
  expect(created.status).toBe(201);
  const event = await svc.call('POST', '/events', { token, body: { type, payload: { amount: 42 } } });
  await waitForDeliveryStatus(svc.service.database.db, event.body.delivery_ids[0], ['succeeded']);
  const request = receiver.requests[0]!;
  return { headers: request.headers as Record<string, string>, body: request.body };
}

describe('ed25519 webhooks', () => {
  it('answer a whpk_ public key, never a secret, in every view', async () => {
    const created = await svc.call('POST', '/webhooks', {
      token,
      body: { url: 'https://example.com/ed', event_types: ['views.only'], signature_type: 'ed25519' },
    });
    expect(created.status).toBe(201);
    expectSchema(webhookWithSecretSchema, created.body);
    expect(created.body).toMatchObject({ signature_type: 'ed25519' });
    expect(created.body.public_key).toMatch(/^whpk_[A-Za-z0-9+/]{43}=$/);
    expect(Buffer.from(created.body.public_key.slice(5), 'base64')).toHaveLength(32);
    expect(created.body).not.toHaveProperty('secret');

    const shown = await svc.call('GET', `/webhooks/${created.body.id}`, { token });
    expectSchema(webhookViewSchema, shown.body);
    expect(shown.body.public_key).toBe(created.body.public_key);
    const secret = await svc.call('GET', `/webhooks/${created.body.id}/secret`, { token });
    expectSchema(webhookSecretSchema, secret.body);
    expect(secret.body).toEqual({ public_key: created.body.public_key });
    expect(JSON.stringify([shown.body, secret.body])).not.toContain('whsk_');

    const hmac = await svc.call('POST', '/webhooks', {
      token,
      body: { url: 'https://example.com/hmac', event_types: ['views.only'] },
    });
    expect(hmac.body).toMatchObject({ signature_type: 'hmac-sha256' });
    expect(hmac.body).not.toHaveProperty('public_key');
  });

  it('refuse a given secret, and an unknown signature type, with a 400 naming the field', async () => {
    const given = await svc.call('POST', '/webhooks', {
      token,
      body: { url: 'https://example.com/x', event_types: ['*'], signature_type: 'ed25519', secret: 'mine' },
    });
    expect(given.status).toBe(400);
    expect(given.body.error.details).toEqual([
      { field: '/secret', message: 'is for hmac-sha256 webhooks only' },
    ]);
    const unknown = await svc.call('POST', '/webhooks', {
      token,
      body: { url: 'https://example.com/x', event_types: ['*'], signature_type: 'rsa' },
    });
    expect(unknown.status).toBe(400);
    expect(JSON.stringify(unknown.body.error.details)).toContain('/signature_type');
  });

  it('a delivery carries v1a,<base64> that verifies with the public key and fails with another', async () => {
    const { headers, body } = await deliverOne('ed.delivered');
    const created = (await svc.call('GET', '/webhooks?limit=500', { token })).body.entries.find(
      (w: { event_types: string[] }) => w.event_types[0] === 'ed.delivered',
    );
    expect(headers['webhook-signature']).toMatch(/^v1a,[A-Za-z0-9+/]{86}==$/);
    expect(verifies(created.public_key, headers, body)).toBe(true);
    expect(verifies(generateKeyPairSync('ed25519').publicKey, headers, body)).toBe(false);
    expect(verifies(created.public_key, headers, body.replace('42', '43'))).toBe(false);
    process.stdout.write(
      `v1a delivery headers: ${JSON.stringify(
        Object.fromEntries(
          Object.entries(headers).filter(([name]) => name.startsWith('webhook-') || name === 'content-type'),
        ),
      )}\npublic key: ${created.public_key}\n`,
    );
  });

  it('a rotation sends both signatures: the old public key and the new one each verify', async () => {
    const receiver = await receivers.start();
    const created = await svc.call('POST', '/webhooks', {
      token,
      body: { url: receiver.url, event_types: ['ed.rotated'], signature_type: 'ed25519' },
    });
    const rotated = await svc.call('POST', `/webhooks/${created.body.id}/rotate-secret`, { token });
    expect(rotated.status).toBe(200);
    expect(rotated.body.public_key).toMatch(/^whpk_/);
    expect(rotated.body.public_key).not.toBe(created.body.public_key);
    expect(rotated.body).not.toHaveProperty('secret');
    const given = await svc.call('POST', `/webhooks/${created.body.id}/rotate-secret`, {
      token,
      body: { secret: 'whsec_c2VjcmV0' },
    });
    expect(given.status).toBe(400);

    const event = await svc.call('POST', '/events', { token, body: { type: 'ed.rotated', payload: {} } });
    await waitForDeliveryStatus(svc.service.database.db, event.body.delivery_ids[0], ['succeeded']);
    const request = receiver.requests[0]!;
    const headers = request.headers as Record<string, string>;
    const signatures = headers['webhook-signature']!.split(' ');
    expect(signatures).toHaveLength(2);
    expect(signatures.every((s) => s.startsWith('v1a,'))).toBe(true);
    expect(verifies(rotated.body.public_key, headers, request.body)).toBe(true);
    expect(verifies(created.body.public_key, headers, request.body)).toBe(true);
    expect(verifies(generateKeyPairSync('ed25519').publicKey, headers, request.body)).toBe(false);
  });
});
