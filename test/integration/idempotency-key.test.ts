/**
 * Idempotency-Key is UTF-8 text: a non-ASCII key is stored and shown as the client sent it,
 * its length counts characters, and bytes that are not UTF-8 are a 400.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService({ NUM_WORKERS: '0' });
});
afterAll(async () => {
  await svc?.stop();
});

/** What curl sends for a UTF-8 header value: its bytes, one character each. */
const asSent = (text: string) => Buffer.from(text, 'utf8').toString('latin1');
const post = async (key: string) =>
  svc.call('POST', '/events', {
    token: await svc.token('keys'),
    body: { type: 'k.t', payload: {} },
    headers: { 'idempotency-key': key },
  });

it('a non-ASCII key comes back as sent, and replays the first answer', async () => {
  const key = 'ключ-🎉';
  const first = await post(asSent(key));
  expect(first.status).toBe(202);
  const again = await post(asSent(key));
  expect(again.status).toBe(202);
  expect(again.body.event_id).toBe(first.body.event_id);
  const event = await svc.call('GET', `/events/${first.body.event_id}`, { token: await svc.token('keys') });
  expect(event.body.idempotency_key).toBe(key);
});

it('the limit counts characters: 255 four-byte characters pass, 256 do not', async () => {
  expect((await post(asSent('🎉'.repeat(255)))).status).toBe(202);
  const tooLong = await post(asSent('🎉'.repeat(256)));
  expect(tooLong.status).toBe(400);
  expect(tooLong.body.error.details).toEqual([
    { field: 'Idempotency-Key', message: 'must be 1 to 255 characters long' },
  ]);
});

it('bytes that are not UTF-8 are a 400 saying so', async () => {
  const res = await post('\u00e9t\u00e9'); // latin1 "été": 0xE9 alone is not UTF-8
  expect(res.status).toBe(400);
  expect(res.body.error.details).toEqual([{ field: 'Idempotency-Key', message: 'must be UTF-8 text' }]);
});
