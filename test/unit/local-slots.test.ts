import { expect, it } from 'vitest';
import { createLocalSlots, reserveFor } from '../../src/tenancy/local-slots.js';

it('no tenant takes more than its share; the rest stays for others', () => {
  const slots = createLocalSlots(10);
  expect(reserveFor(10)).toBe(2);
  let slow = 0;
  while (slots.tryTake('slow')) slow++;
  expect(slow).toBe(8);
  expect(slots.tryTake('fast')).toBe(true);
  expect(slots.tryTake('fast')).toBe(true);
  // Every slot is now taken.
  expect(slots.tryTake('late')).toBe(false);
  slots.release('slow');
  expect(slots.tryTake('late')).toBe(true);
  slots.release('fast');
  // 'slow' still holds 7 of its 8.
  expect(slots.tryTake('slow')).toBe(true);
  slots.release('late');
  expect(slots.tryTake('slow')).toBe(false);
});

it('one slot in all: no reserve', () => {
  const slots = createLocalSlots(1);
  expect(slots.tryTake('a')).toBe(true);
  expect(slots.tryTake('b')).toBe(false);
  slots.release('a');
  expect(slots.inUse().size).toBe(0);
  expect(slots.tryTake('b')).toBe(true);
});
