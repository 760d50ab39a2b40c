/**
 * The bench's yardstick column: a phase is ahead only when it is at least as good in every
 * figure its yardstick has, with everything delivered.
 */
import { describe, expect, it } from 'vitest';
import { describeYardstick, isAhead, yardstickFor } from '../../bench/yardstick.js';

const fmt = (n: number) => n.toLocaleString('en-US');

describe('the bench yardstick', () => {
  it('holds each phase with a receiver at once to POST p99 and event-to-receiver p99', () => {
    const at1000 = yardstickFor(0, '1,000/s')!;
    expect(describeYardstick(at1000, fmt)).toBe('24 / 32');
    expect(isAhead({ postP99: 18, e2eP99: 23, perSec: 1000, allDelivered: true }, at1000)).toBe(true);
    expect(isAhead({ postP99: 18, e2eP99: 33, perSec: 1000, allDelivered: true }, at1000)).toBe(false);
    expect(isAhead({ postP99: 25, e2eP99: 23, perSec: 1000, allDelivered: true }, at1000)).toBe(false);
    // Fast, but not everything arrived: behind.
    expect(isAhead({ postP99: 5, e2eP99: 6, perSec: 1000, allDelivered: false }, at1000)).toBe(false);
  });

  it('holds saturation to events delivered per second and their p99', () => {
    const saturation = yardstickFor(0, 'saturation')!;
    expect(describeYardstick(saturation, fmt)).toBe('4,192/s');
    expect(isAhead({ postP99: 56, e2eP99: 58, perSec: 4192, allDelivered: true }, saturation)).toBe(true);
    expect(isAhead({ postP99: 56, e2eP99: 58, perSec: 2796, allDelivered: true }, saturation)).toBe(false);
  });

  it('after 100 ms has event-to-receiver figures only, and none at 3,000/s; other delays have none', () => {
    const at2000 = yardstickFor(100, '2,000/s')!;
    expect(describeYardstick(at2000, fmt)).toBe('e2e 70');
    expect(isAhead({ postP99: 500, e2eP99: 57, perSec: 2000, allDelivered: true }, at2000)).toBe(true);
    expect(yardstickFor(100, '3,000/s')).toBeUndefined();
    expect(yardstickFor(250, '1,000/s')).toBeUndefined();
  });
});
