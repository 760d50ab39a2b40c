import { expect, it } from 'vitest';
import { createLocalSlots, reserveFor } from '../../src/tenancy/local-slots.js';

it('no tenant takes more than its share; the rest stays for others', () => {
  const slots = createLocalSlots(10);
  expect(reserveFor(10)).toBe(3);
  const slow: (() => void)[] = [];
  for (let release = slots.tryTake('slow'); release; release = slots.tryTake('slow')) slow.push(release);
  expect(slow).toHaveLength(7);
  const fast = [slots.tryTake('fast'), slots.tryTake('fast'), slots.tryTake('fast')];
  expect(fast.every(Boolean)).toBe(true);
  // Every slot is now taken.
  expect(slots.tryTake('late')).toBeUndefined();
  slow.pop()!();
  const late = slots.tryTake('late');
  expect(late).toBeDefined();
  fast[0]!();
  // 'slow' holds 6 of its 7.
  const again = slots.tryTake('slow');
  expect(again).toBeDefined();
  late!();
  expect(slots.tryTake('slow')).toBeUndefined();
  expect(slots.inUse().get('slow')).toBe(7);
});

it('one slot in all: no reserve; releasing twice frees once', () => {
  const slots = createLocalSlots(1);
  const release = slots.tryTake('a');
  expect(slots.tryTake('b')).toBeUndefined();
  release!();
  release!();
  expect(slots.inUse().size).toBe(0);
  expect(slots.tryTake('b')).toBeDefined();
  expect(slots.tryTake('c')).toBeUndefined();
});

it('tells how long a tenant has been busy', () => {
  let clock = 1000;
  const slots = createLocalSlots(4, () => clock);
  expect(slots.busyForMs('t')).toBe(0);
  const first = slots.tryTake('t')!;
  clock = 1500;
  slots.tryTake('t');
  clock = 1800;
  expect(slots.busyForMs('t')).toBe(800);
  first();
  expect(slots.busyForMs('t')).toBe(300);
});
