import { describe, expect, it } from 'vitest';
import { admitInWindow, SLOTS } from '../../src/tenancy/event-rate-limit.js';

const empty = () => ({ slotNumbers: Array(SLOTS).fill(0), slotCounts: Array(SLOTS).fill(0) });

describe('admitInWindow', () => {
  it('admits up to the limit within one second, then nothing', () => {
    let ring = empty();
    let admitted = 0;
    // 500 requests spread over one second, 1 every 2 ms.
    for (let i = 0; i < 500; i++) {
      const outcome = admitInWindow(ring, 100, 1_000_000 + i * 2, 1);
      admitted += outcome.admitted;
      ring = outcome;
    }
    expect(admitted).toBe(100);
  });

  it('frees room as slots fall out of the window', () => {
    const first = admitInWindow(empty(), 10, 5_000, 10);
    expect(first.admitted).toBe(10);
    expect(admitInWindow(first, 10, 5_900, 1).admitted).toBe(0);
    expect(admitInWindow(first, 10, 6_000, 1).admitted).toBe(1);
  });

  it('admits part of a batch and reports when room returns', () => {
    const outcome = admitInWindow(empty(), 5, 10_050, 8);
    expect(outcome.admitted).toBe(5);
    expect(outcome.resetSeconds).toBeGreaterThanOrEqual(1);
    const next = admitInWindow(outcome, 5, 10_060, 1);
    expect(next.admitted).toBe(0);
    expect(next.resetSeconds).toBe(1);
  });

  it('a zero limit admits nothing', () => {
    expect(admitInWindow(empty(), 0, 1, 3).admitted).toBe(0);
  });
});
