import { describe, expect, it } from 'vitest';
import { createGroupCommitter } from '../../src/db/group-commit.js';

/** A commit that records its batches and finishes when told to. */
function recorder(options: { failWhen?: (items: number[]) => boolean } = {}) {
  const batches: number[][] = [];
  const singles: number[] = [];
  const gates: (() => void)[] = [];
  let hold = false;
  const wait = () => (hold ? new Promise<void>((resolve) => gates.push(resolve)) : Promise.resolve());
  return {
    batches,
    singles,
    holdCommits: () => (hold = true),
    releaseAll: () => {
      hold = false;
      gates.splice(0).forEach((open) => open());
    },
    waitingGates: () => gates.length,
    async commitBatch(items: number[]) {
      batches.push(items);
      await wait();
      if (options.failWhen?.(items)) throw new Error('batch failed');
      return items.map((i): PromiseSettledResult<number> =>
        i < 0
          ? { status: 'rejected', reason: new Error(`refused ${i}`) }
          : { status: 'fulfilled', value: i * 10 },
      );
    },
    async commitOne(item: number) {
      singles.push(item);
      await wait();
      if (options.failWhen?.([item])) throw new Error(`item ${item} failed`);
      return item * 10;
    },
  };
}

describe('group commit', () => {
  it('commits what arrives together in one batch and answers each in order', async () => {
    const rec = recorder();
    const gc = createGroupCommitter({ maxBatchSize: 100, maxWaitMs: 5, maxConcurrentBatches: 2, ...rec });
    const results = await Promise.all([1, 2, 3, 4].map((i) => gc.submit(i)));
    expect(results).toEqual([10, 20, 30, 40]);
    expect(rec.batches).toEqual([[1, 2, 3, 4]]);
    expect(gc.pending()).toBe(0);
  });

  it('a lone item goes through commitOne', async () => {
    const rec = recorder();
    const gc = createGroupCommitter({ maxBatchSize: 100, maxWaitMs: 1, maxConcurrentBatches: 2, ...rec });
    expect(await gc.submit(7)).toBe(70);
    expect(rec.singles).toEqual([7]);
    expect(rec.batches).toEqual([]);
  });

  it('splits at maxBatchSize without waiting for the timer', async () => {
    const rec = recorder();
    const gc = createGroupCommitter({ maxBatchSize: 3, maxWaitMs: 60_000, maxConcurrentBatches: 4, ...rec });
    const results = await Promise.all([1, 2, 3, 4, 5, 6].map((i) => gc.submit(i)));
    expect(results).toEqual([10, 20, 30, 40, 50, 60]);
    expect(rec.batches).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ]);
  });

  it('a failing batch is retried item by item, so only the bad item fails', async () => {
    const rec = recorder({ failWhen: (items) => items.includes(3) });
    const reports: { size: number; fellBack: boolean }[] = [];
    const gc = createGroupCommitter({
      maxBatchSize: 100,
      maxWaitMs: 5,
      maxConcurrentBatches: 2,
      ...rec,
      onBatch: (r) => reports.push({ size: r.size, fellBack: r.fellBack }),
    });
    const outcomes = await Promise.allSettled([1, 2, 3, 4].map((i) => gc.submit(i)));
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect((outcomes[2] as PromiseRejectedResult).reason.message).toBe('item 3 failed');
    expect(rec.singles.sort()).toEqual([1, 2, 3, 4]);
    expect(reports).toEqual([{ size: 4, fellBack: true }]);
  });

  it('a batch may refuse single items while committing the rest', async () => {
    const rec = recorder();
    const gc = createGroupCommitter({ maxBatchSize: 100, maxWaitMs: 5, maxConcurrentBatches: 2, ...rec });
    const outcomes = await Promise.allSettled([1, -2, 3].map((i) => gc.submit(i)));
    expect(outcomes).toEqual([
      { status: 'fulfilled', value: 10 },
      { status: 'rejected', reason: new Error('refused -2') },
      { status: 'fulfilled', value: 30 },
    ]);
    expect(rec.batches).toEqual([[1, -2, 3]]);
    expect(rec.singles).toEqual([]);
  });

  it('holds newcomers while maxConcurrentBatches are in flight, then sends them as one batch', async () => {
    const rec = recorder();
    rec.holdCommits();
    const gc = createGroupCommitter({ maxBatchSize: 100, maxWaitMs: 1, maxConcurrentBatches: 1, ...rec });
    const first = Promise.all([gc.submit(1), gc.submit(2)]);
    // wait until the first batch is in flight (blocked on its gate)
    while (rec.waitingGates() === 0) await new Promise((resolve) => setImmediate(resolve));
    const later = [3, 4, 5].map((i) => gc.submit(i));
    expect(gc.pending()).toBe(5);
    expect(rec.batches).toEqual([[1, 2]]);
    rec.releaseAll();
    expect(await first).toEqual([10, 20]);
    expect(await Promise.all(later)).toEqual([30, 40, 50]);
    expect(rec.batches).toEqual([
      [1, 2],
      [3, 4, 5],
    ]);
  });
});
