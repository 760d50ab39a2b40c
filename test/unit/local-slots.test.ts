import { expect, it } from 'vitest';
import { createLocalSlots, reserveFor } from '../../src/tenancy/local-slots.js';

it('a tenant with work running leaves the reserve free; a tenant with none may use it', () => {
  const slots = createLocalSlots(10);
  expect(reserveFor(10)).toBe(2);
  let slow = 0;
  while (slots.tryTake('slow')) slow++;
  expect(slow).toBe(8);
  expect(slots.tryTake('other-slow')).toBe(true);
  expect(slots.tryTake('other-slow')).toBe(false);
  expect(slots.tryTake('fresh')).toBe(true);
  expect(slots.tryTake('fresh')).toBe(false);
  // Every slot is now taken.
  expect(slots.tryTake('late')).toBe(false);
  slots.release('slow');
  expect(slots.tryTake('late')).toBe(true);
});

it('one slot in all: no reserve', () => {
  const slots = createLocalSlots(1);
  expect(slots.tryTake('a')).toBe(true);
  expect(slots.tryTake('b')).toBe(false);
  slots.release('a');
  expect(slots.inUse().size).toBe(0);
  expect(slots.tryTake('b')).toBe(true);
});
