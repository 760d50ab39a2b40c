/**
 * A tenant whose max_events_per_sec is 0 is told so: 403 events_disabled without a Retry-After
 * (a retry cannot succeed), not a 429 that invites retrying every second forever.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { setQuota } from '../helpers/dead-letters.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService({ NUM_WORKERS: '0' });
});
afterAll(async () => {
  await svc?.stop();
});

it('max_events_per_sec = 0: 403 events_disabled, no Retry-After, nothing stored; a raised limit lets events in', async () => {
  const token = await svc.token('muted');
  const first = await svc.call('POST', '/events', { token, body: { type: 'a.b', payload: {} } });
  expect(first.status).toBe(202);
  await setQuota(svc.service.database.db, 'muted', { max_events_per_sec: 0 });

  for (const idempotencyKey of [undefined, 'key-1']) {
    const refused = await svc.call('POST', '/events', {
      token,
      body: { type: 'a.b', payload: {} },
      ...(idempotencyKey ? { headers: { 'idempotency-key': idempotencyKey } } : {}),
    });
    expect(refused.status).toBe(403);
    expect(refused.body).toEqual({
      error: {
        code: 'events_disabled',
        message: 'Tenant muted may not send events: its max_events_per_sec is 0.',
      },
    });
    expect(refused.headers.get('retry-after')).toBeNull();
    expect(refused.headers.get('ratelimit-limit')).toBe('0');
  }
  const events = await svc.service.database.db
    .selectFrom('events')
    .select('id')
    .where('tenant_id', '=', 'muted')
    .execute();
  expect(events).toHaveLength(1);

  await setQuota(svc.service.database.db, 'muted', { max_events_per_sec: 10 });
  const again = await svc.call('POST', '/events', { token, body: { type: 'a.b', payload: {} } });
  expect(again.status).toBe(202);
});
