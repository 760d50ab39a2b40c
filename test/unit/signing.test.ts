import { createHmac, randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { buildDeliveryRequest, USER_AGENT } from '../../src/delivery/delivery-request.js';
import { activeSecrets, sign, signatureHeader, signingKey } from '../../src/delivery/signing.js';

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
    expect(signingKey(secret)).toEqual(Buffer.from(secret, 'utf8'));
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
    const header = signatureHeader(secrets, 'msg_3', timestamp, body);
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
      webhook: {
        url: 'https://example.com/hook',
        secret: 's',
        previous_secret: null,
        previous_secret_expires_at: null,
      },
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
});
