import { describe, expect, it } from 'vitest';
import { decideAfterFailure, maxAttempts, parseRetryAfter } from '../../src/delivery/retry-policy.js';

const schedule = [1, 4, 16];
const now = new Date('2024-05-01T12:00:00Z');

describe('retry policy', () => {
  it('waits schedule[n-1] after attempt n, with up to 20% jitter and never less', () => {
    expect(
      decideAfterFailure({ attempt: 1, statusCode: 500, retryAfter: null }, schedule, now, () => 0),
    ).toEqual({
      kind: 'retry',
      delayMs: 1000,
    });
    expect(
      decideAfterFailure({ attempt: 2, statusCode: 500, retryAfter: null }, schedule, now, () => 0.999),
    ).toEqual({
      kind: 'retry',
      delayMs: Math.round(4000 * 1.1998),
    });
    for (let i = 0; i < 200; i++) {
      const decision = decideAfterFailure({ attempt: 3, statusCode: null, retryAfter: null }, schedule, now);
      expect(decision.kind).toBe('retry');
      if (decision.kind === 'retry') {
        expect(decision.delayMs).toBeGreaterThanOrEqual(16000);
        expect(decision.delayMs).toBeLessThanOrEqual(16000 * 1.2);
      }
    }
  });

  it('is dead after 1 + schedule.length attempts', () => {
    expect(maxAttempts(schedule)).toBe(4);
    expect(decideAfterFailure({ attempt: 4, statusCode: 500, retryAfter: null }, schedule, now)).toEqual({
      kind: 'dead',
    });
    expect(decideAfterFailure({ attempt: 1, statusCode: 500, retryAfter: null }, [], now)).toEqual({
      kind: 'dead',
    });
  });

  it('honours Retry-After on 429 and 503, capped at one hour', () => {
    const at = (statusCode: number, retryAfter: string) =>
      decideAfterFailure({ attempt: 1, statusCode, retryAfter }, schedule, now, () => 0);
    expect(at(429, '120')).toEqual({ kind: 'retry', delayMs: 120_000 });
    expect(at(503, '99999')).toEqual({ kind: 'retry', delayMs: 3_600_000 });
    expect(at(503, 'Wed, 01 May 2024 12:00:30 GMT')).toEqual({ kind: 'retry', delayMs: 30_000 });
    // Shorter than our own backoff: ours wins.
    expect(at(429, '0')).toEqual({ kind: 'retry', delayMs: 1000 });
    // Only on 429/503.
    expect(at(500, '120')).toEqual({ kind: 'retry', delayMs: 1000 });
    // Unreadable: ignored.
    expect(at(429, 'soon')).toEqual({ kind: 'retry', delayMs: 1000 });
  });

  it('parses Retry-After', () => {
    expect(parseRetryAfter(' 5 ', now)).toBe(5000);
    expect(parseRetryAfter('Wed, 01 May 2024 11:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('-1', now)).toBeUndefined();
    expect(parseRetryAfter('1.5', now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });
});
