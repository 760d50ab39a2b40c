import { expect, it } from 'vitest';
import { createLocalSlots, reserveFor } from '../../src/tenancy/local-slots.js';

it('a slow tenant takes no more than its share; the rest stays for others', () => {
  let clock = 0;
  const slots = createLocalSlots(10, { slowAfterMs: 250, now: () => clock });
  expect(reserveFor(10)).toBe(3);
  const slow: (() => void)[] = [];
  for (let i = 0; i < 7; i++) slow.push(slots.tryTake('slow')!);
  // Its oldest delivery has now run for longer than 250 ms: it is slow, and at its share.
  clock = 300;
  expect(slots.tryTake('slow')).toBeUndefined();
  expect(slots.blockedTenants()).toEqual(['slow']);
  const fast = [slots.tryTake('fast'), slots.tryTake('fast'), slots.tryTake('fast')];
  expect(fast.every(Boolean)).toBe(true);
  // Every slot is now taken.
  expect(slots.tryTake('late')).toBeUndefined();
  slow.shift()!();
  const late = slots.tryTake('late');
  expect(late).toBeDefined();
  fast[0]!();
  // 'slow' holds 6 of its 7.
  expect(slots.blockedTenants()).toEqual([]);
  const again = slots.tryTake('slow');
  expect(again).toBeDefined();
  late!();
  expect(slots.tryTake('slow')).toBeUndefined();
  expect(slots.inUse().get('slow')).toBe(7);
});

it('a fast tenant may use every slot but one, and is not left in the queue for it', () => {
  let clock = 0;
  const slots = createLocalSlots(10, { slowAfterMs: 250, now: () => clock });
  const taken = Array.from({ length: 9 }, () => slots.tryTake('fast'));
  expect(taken.every(Boolean)).toBe(true);
  expect(slots.tryTake('fast')).toBeUndefined();
  // Its next job waits for a slot instead (waitToTake), so its jobs stay fetchable.
  expect(slots.blockedTenants()).toEqual([]);
  expect(slots.tryTake('other')).toBeDefined();
  taken.pop()!();
  taken.push(slots.tryTake('fast'));
  // Once its deliveries have run long, it is slow: held to its share, and left in the queue.
  clock = 1000;
  expect(slots.blockedTenants()).toEqual(['fast']);
  taken[0]!();
  expect(slots.tryTake('fast')).toBeUndefined();
});

it("a fast tenant's job at its share waits for the tenant's next free slot, not another tenant's", async () => {
  const slots = createLocalSlots(4, { slowAfterMs: 5_000 });
  const fast = [slots.tryTake('fast')!, slots.tryTake('fast')!, slots.tryTake('fast')!];
  const other = slots.tryTake('other')!;
  let got: (() => void) | undefined;
  const waiting = slots.waitToTake('fast', 5_000).then((release) => (got = release));
  other();
  await Promise.resolve();
  expect(got).toBeUndefined();
  fast[0]!();
  await waiting;
  expect(got).toBeDefined();
  expect(slots.inUse().get('fast')).toBe(3);
});

it('a job waiting for its tenant gives up once the tenant is slow, or when time runs out', async () => {
  const slots = createLocalSlots(4, { slowAfterMs: 30 });
  for (let i = 0; i < 3; i++) slots.tryTake('turning');
  // No slot frees: after 30 ms its oldest delivery counts as slow, and the wait ends empty.
  expect(await slots.waitToTake('turning', 5_000)).toBeUndefined();
  const quick = createLocalSlots(4, { slowAfterMs: 5_000 });
  for (let i = 0; i < 3; i++) quick.tryTake('fast');
  expect(await quick.waitToTake('fast', 20)).toBeUndefined();
  // A tenant with room does not wait at all.
  expect(await quick.waitToTake('roomy', 0)).toBeUndefined();
  expect(quick.tryTake('roomy')).toBeDefined();
});

it('jobs being fetched count against every slow tenant with deliveries running', () => {
  let clock = 0;
  const slots = createLocalSlots(10, { slowAfterMs: 250, now: () => clock });
  const taken = Array.from({ length: 5 }, () => slots.tryTake('busy'));
  expect(taken.every(Boolean)).toBe(true);
  clock = 300;
  // Five running and slow, share seven: one fetch under way may still bring one of its jobs, two may not.
  expect(slots.blockedTenants(1)).toEqual([]);
  expect(slots.blockedTenants(2)).toEqual(['busy']);
  // Whatever the fetches bring finds its slot.
  expect(slots.tryTake('busy')).toBeDefined();
  expect(slots.tryTake('busy')).toBeDefined();
  expect(slots.blockedTenants()).toEqual(['busy']);
});

it('a tenant stays slow after its slow deliveries end, until a fast one ends', () => {
  let clock = 0;
  const slots = createLocalSlots(10, { slowAfterMs: 250, now: () => clock });
  const first = Array.from({ length: 7 }, () => slots.tryTake('slow')!);
  clock = 1000;
  // All seven end together after a second: the next seven would all be young, but it is still slow.
  for (const release of first) release();
  const next = Array.from({ length: 7 }, () => slots.tryTake('slow')!);
  expect(next.every(Boolean)).toBe(true);
  expect(slots.tryTake('slow')).toBeUndefined();
  expect(slots.blockedTenants()).toEqual(['slow']);
  // A fast end: fast again, up to all slots but one.
  clock = 1010;
  next[0]!();
  expect(slots.blockedTenants()).toEqual([]);
  expect(slots.tryTake('slow')).toBeDefined();
  expect(slots.tryTake('slow')).toBeDefined();
  expect(slots.tryTake('slow')).toBeDefined();
  expect(slots.tryTake('slow')).toBeUndefined();
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
  const slots = createLocalSlots(4, { now: () => clock });
  expect(slots.busyForMs('t')).toBe(0);
  const first = slots.tryTake('t')!;
  clock = 1500;
  slots.tryTake('t');
  clock = 1800;
  expect(slots.busyForMs('t')).toBe(800);
  first();
  expect(slots.busyForMs('t')).toBe(300);
});

it('a held-off tenant is blocked until the time passes or one of its deliveries ends', () => {
  let clock = 0;
  const slots = createLocalSlots(10, { now: () => clock });
  slots.holdOff('capped', 200);
  expect(slots.blockedTenants()).toEqual(['capped']);
  clock = 201;
  expect(slots.blockedTenants()).toEqual([]);
  const release = slots.tryTake('capped')!;
  slots.holdOff('capped', 200);
  release();
  expect(slots.blockedTenants()).toEqual([]);
});
