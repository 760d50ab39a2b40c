import { describe, expect, it } from 'vitest';
import { decide } from '../../src/delivery/decide.js';
import type { AttemptResult } from '../../src/delivery/http-client.js';

const now = new Date('2026-12-06T12:00:00Z');
const result = (fields: Partial<AttemptResult>): AttemptResult => ({
  ok: false,
  statusCode: null,
  error: 'x',
  blocked: false,
  permanent: false,
  interrupted: false,
  durationMs: 5,
  responseBody: null,
  responseHeaders: null,
  ...fields,
});

describe('decide', () => {
  it('a 2xx succeeds', () => {
    expect(decide(result({ ok: true, statusCode: 200, error: null }), 1, [1], now)).toEqual({
      state: { status: 'succeeded' },
      outcome: 'succeeded',
    });
  });

  it('a refused destination is dead at once; a 410 pauses', () => {
    expect(decide(result({ permanent: true, blocked: true }), 1, [1, 4], now).outcome).toBe('dead');
    expect(decide(result({ statusCode: 410 }), 1, [1, 4], now)).toEqual({
      state: { status: 'paused' },
      outcome: 'gone',
    });
  });

  it('a failure retries after the schedule (with jitter), and the last one is dead', () => {
    const { state, outcome } = decide(result({ statusCode: 500 }), 1, [10], now);
    expect(outcome).toBe('retry_scheduled');
    const delay = (state as { nextAttemptAt: Date }).nextAttemptAt.getTime() - now.getTime();
    expect(delay).toBeGreaterThanOrEqual(10_000);
    expect(delay).toBeLessThanOrEqual(12_000);
    expect(decide(result({ statusCode: 500 }), 2, [10], now).outcome).toBe('dead');
  });

  it('an attempt cut short by a stop is retried at once, but not past the schedule', () => {
    expect(decide(result({ interrupted: true }), 1, [10], now)).toEqual({
      state: { status: 'failed', nextAttemptAt: now },
      outcome: 'retry_scheduled',
    });
    expect(decide(result({ interrupted: true }), 2, [10], now).outcome).toBe('dead');
  });
});
