import { createHmac, createPublicKey, randomBytes, verify, type KeyObject } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { buildDeliveryRequest, USER_AGENT } from '../../src/delivery/delivery-request.js';
import {
  activeSecrets,
  generateEd25519Secret,
  signatureHeader,
  signingKeyOf,
  signWith,
  type SigningKey,
} from '../../src/delivery/signing.js';

const hmac = (secret: string): SigningKey => signingKeyOf('hmac-sha256', secret);
const sign = (secret: string, id: string, timestamp: number, body: string) =>
  signWith(hmac(secret), id, timestamp, body);

/** DER before a raw 32-byte ed25519 public key (SPKI): how a receiver imports a `whpk_` key. */
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');
const publicKeyObject = (publicKey: string): KeyObject =>
  createPublicKey({
    key: Buffer.concat([SPKI_ED25519, Buffer.from(publicKey.slice('whpk_'.length), 'base64')]),
    format: 'der',
    type: 'spki',
  });
/** The `whpk_` public key of a `whsk_` secret. */
const publicKeyOf = (secret: string): string => {
  const { key } = signingKeyOf('ed25519', secret) as { key: KeyObject };
  return (
    'whpk_' +
    createPublicKey(key)
      .export({ format: 'der', type: 'spki' })
      .subarray(SPKI_ED25519.length)
      .toString('base64')
  );
};

/** What docs/api.md shows a receiver doing with a `v1a` signature. */
function verifiesV1a(
  publicKey: string,
  header: string,
  id: string,
  timestamp: number,
  body: string,
): boolean {
  const key = publicKeyObject(publicKey);
  return header
    .split(' ')
    .filter((part) => part.startsWith('v1a,'))
    .some((part) =>
      verify(null, Buffer.from(`${id}.${timestamp}.${body}`), key, Buffer.from(part.slice(4), 'base64')),
    );
}

const whsec = () => `whsec_${randomBytes(24).toString('base64')}`;

describe('signing', () => {
  it('a whsec_ secret verifies with the standardwebhooks library', () => {
    const secret = whsec();
    const body = JSON.stringify({ type: 'a.b', timestamp: new Date().toISOString(), data: { x: 1 } });
    const timestamp = Math.floor(Date.now() / 1000);
    const headers = {
      'webhook-id': 'msg_1',
      'webhook-timestamp': String(timestamp),
      'webhook-signature': sign(secret, 'msg_1', timestamp, body),
    };
    expect(new Webhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
  });

  it('a plain secret is used as its UTF-8 bytes', () => {
    const secret = 'my plain secret ✓';
    expect(hmac(secret)).toEqual({ type: 'hmac-sha256', key: Buffer.from(secret, 'utf8') });
    const expected = createHmac('sha256', Buffer.from(secret, 'utf8'))
      .update('id.1700000000.{}')
      .digest('base64');
    expect(sign(secret, 'id', 1700000000, '{}')).toBe(`v1,${expected}`);
  });

  it('a wrong secret does not verify', () => {
    const body = '{"a":1}';
    const timestamp = Math.floor(Date.now() / 1000);
    const headers = {
      'webhook-id': 'msg_2',
      'webhook-timestamp': String(timestamp),
      'webhook-signature': sign(whsec(), 'msg_2', timestamp, body),
    };
    expect(() => new Webhook(whsec()).verify(body, headers)).toThrow();
  });

  it('during a rotation both signatures are sent and each secret verifies', () => {
    const current = whsec();
    const previous = whsec();
    const now = new Date();
    const secrets = activeSecrets(
      {
        secret: current,
        previous_secret: previous,
        previous_secret_expires_at: new Date(now.getTime() + 60_000),
      },
      now,
    );
    expect(secrets).toEqual([current, previous]);
    const body = '{"b":2}';
    const timestamp = Math.floor(now.getTime() / 1000);
    const header = signatureHeader(secrets.map(hmac), 'msg_3', timestamp, body);
    expect(header.split(' ')).toHaveLength(2);
    const headers = {
      'webhook-id': 'msg_3',
      'webhook-timestamp': String(timestamp),
      'webhook-signature': header,
    };
    expect(new Webhook(current).verify(body, headers)).toEqual({ b: 2 });
    expect(new Webhook(previous).verify(body, headers)).toEqual({ b: 2 });
  });

  it('an expired previous secret no longer signs', () => {
    const now = new Date();
    expect(
      activeSecrets(
        { secret: 'a', previous_secret: 'b', previous_secret_expires_at: new Date(now.getTime() - 1) },
        now,
      ),
    ).toEqual(['a']);
    expect(
      activeSecrets({ secret: 'a', previous_secret: 'b', previous_secret_expires_at: null }, now),
    ).toEqual(['a']);
  });

  it('builds the contract body and headers', () => {
    const createdAt = new Date('2024-05-01T12:00:00.000Z');
    const now = new Date('2024-05-01T12:00:05.900Z');
    const request = buildDeliveryRequest({
      deliveryId: '8d7c5b8e-1f7e-4a53-9f55-1b7f4f1e2a10',
      webhook: { url: 'https://example.com/hook', keys: [hmac('s')] },
      event: { type: 'order.created', payload: { id: 7 }, created_at: createdAt },
      now,
    });
    expect(JSON.parse(request.body)).toEqual({
      type: 'order.created',
      timestamp: '2024-05-01T12:00:00.000Z',
      data: { id: 7 },
    });
    expect(request.headers).toEqual({
      'content-type': 'application/json',
      'webhook-id': '8d7c5b8e-1f7e-4a53-9f55-1b7f4f1e2a10',
      'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
      'webhook-signature': sign(
        's',
        '8d7c5b8e-1f7e-4a53-9f55-1b7f4f1e2a10',
        Math.floor(now.getTime() / 1000),
        request.body,
      ),
      'user-agent': USER_AGENT,
    });
    expect(USER_AGENT).toMatch(/^hookrelay\/\d+\.\d+\.\d+/);
  });

  describe('ed25519 (v1a)', () => {
    it('a generated key pair: whsk_ private key, whpk_ public key of 32 bytes', () => {
      const { secret, publicKey } = generateEd25519Secret();
      expect(secret).toMatch(/^whsk_[A-Za-z0-9+/]{43}=$/);
      expect(publicKey).toMatch(/^whpk_[A-Za-z0-9+/]{43}=$/);
      expect(Buffer.from(publicKey.slice(5), 'base64')).toHaveLength(32);
      expect(publicKeyOf(secret)).toBe(publicKey);
    });

    it('a v1a signature verifies with the public key and not with another', () => {
      const { secret, publicKey } = generateEd25519Secret();
      const body = '{"type":"a.b","data":{"x":1}}';
      const header = signatureHeader([signingKeyOf('ed25519', secret)], 'msg_4', 1700000000, body);
      expect(header).toMatch(/^v1a,[A-Za-z0-9+/]{86}==$/);
      expect(verifiesV1a(publicKey, header, 'msg_4', 1700000000, body)).toBe(true);
      expect(verifiesV1a(generateEd25519Secret().publicKey, header, 'msg_4', 1700000000, body)).toBe(false);
      expect(verifiesV1a(publicKey, header, 'msg_4', 1700000000, body + ' ')).toBe(false);
    });

    it('during a rotation both signatures are sent and each public key verifies', () => {
      const current = generateEd25519Secret();
      const previous = generateEd25519Secret();
      const keys = [current.secret, previous.secret].map((s) => signingKeyOf('ed25519', s));
      const header = signatureHeader(keys, 'msg_5', 1700000000, '{}');
      expect(header.split(' ')).toHaveLength(2);
      expect(verifiesV1a(current.publicKey, header, 'msg_5', 1700000000, '{}')).toBe(true);
      expect(verifiesV1a(previous.publicKey, header, 'msg_5', 1700000000, '{}')).toBe(true);
    });

    it('refuses a secret that is not a whsk_ key', () => {
      expect(() => signingKeyOf('ed25519', 'whsec_abc')).toThrow(/whsk_/);
      expect(() => signingKeyOf('ed25519', 'whsk_AAAA')).toThrow(/32 bytes/);
    });
  });
});
