/**
 * Group commit: requests that arrive close together share one transaction. A commit costs
 * about the same for one event as for a hundred (PostgreSQL serialises commits that carry a
 * NOTIFY, and `add_jobs` sends one per call), so sharing it is what makes ingestion fast.
 *
 * The first item to arrive starts a short wait (`maxWaitMs`; 0 = until the current round of I/O
 * callbacks is over, `setImmediate`); everything that arrives in it,
 * up to `maxBatchSize`, is committed together. While `maxConcurrentBatches` commits are in
 * flight, newcomers wait and go out as soon as one finishes, so batches grow with the load.
 * When a batch fails, each of its items is committed on its own, so only a bad one fails.
 */
export interface GroupCommitOptions<I, R> {
  maxBatchSize: number;
  maxWaitMs: number;
  maxConcurrentBatches: number;
  /**
   * While a batch is in flight, another starts only once this many items wait (default 1):
   * under light load items gather into the next batch, under heavy load commits overlap.
   */
  concurrentFrom?: number;
  /**
   * Commits all items in one transaction and answers each, in the same order: a value, or an
   * error of its own (e.g. refused by a limit) while the others commit. Throwing fails the
   * batch as a whole: its items are then committed one by one.
   */
  commitBatch(items: I[]): Promise<PromiseSettledResult<R>[]>;
  /** Commits one item in its own transaction. */
  commitOne(item: I): Promise<R>;
  /** Told after every batch, for logs and figures. */
  onBatch?(report: { size: number; durationMs: number; fellBack: boolean; error?: unknown }): void;
}

export interface GroupCommitter<I, R> {
  /** Resolves once the item is committed (or rejects with its own error). */
  submit(item: I): Promise<R>;
  /** Items waiting and batches in flight, for tests and shutdown. */
  pending(): number;
}

interface Waiting<I, R> {
  item: I;
  resolve(result: R): void;
  reject(err: unknown): void;
}

export function createGroupCommitter<I, R>(options: GroupCommitOptions<I, R>): GroupCommitter<I, R> {
  const waiting: Waiting<I, R>[] = [];
  let timer: { cancel(): void } | undefined;
  let running = 0;
  let inFlightItems = 0;

  const concurrentFrom = options.concurrentFrom ?? 1;
  const mayStart = (): boolean =>
    running === 0 || (running < options.maxConcurrentBatches && waiting.length >= concurrentFrom);

  const flush = (): void => {
    timer?.cancel();
    timer = undefined;
    while (waiting.length > 0 && mayStart()) {
      void run(waiting.splice(0, options.maxBatchSize));
    }
  };

  const run = async (batch: Waiting<I, R>[]): Promise<void> => {
    running++;
    inFlightItems += batch.length;
    const started = performance.now();
    const outcome = await commitAll(batch.map((w) => w.item));
    running--;
    inFlightItems -= batch.length;
    options.onBatch?.({
      size: batch.length,
      durationMs: performance.now() - started,
      fellBack: outcome.fellBack,
      ...(outcome.fellBack ? { error: outcome.batchError } : {}),
    });
    batch.forEach((w, i) => {
      const settled = outcome.settled[i]!;
      if (settled.status === 'fulfilled') w.resolve(settled.value);
      else w.reject(settled.reason);
    });
    // Whoever arrived meanwhile has waited long enough.
    if (waiting.length > 0) flush();
  };

  /** Never throws: each item's own outcome, in order. */
  const commitAll = async (
    items: I[],
  ): Promise<{ settled: PromiseSettledResult<R>[]; fellBack: boolean; batchError?: unknown }> => {
    if (items.length === 1) {
      return { settled: await Promise.allSettled([options.commitOne(items[0]!)]), fellBack: false };
    }
    try {
      return { settled: await options.commitBatch(items), fellBack: false };
    } catch (batchError) {
      const settled = await Promise.allSettled(items.map((item) => options.commitOne(item)));
      return { settled, fellBack: true, batchError };
    }
  };

  return {
    submit(item) {
      return new Promise<R>((resolve, reject) => {
        waiting.push({ item, resolve, reject });
        if (waiting.length >= options.maxBatchSize) flush();
        else if (timer === undefined && mayStart()) {
          timer = startWait(flush, options.maxWaitMs);
        }
      });
    },
    pending: () => waiting.length + inFlightItems,
  };
}

function startWait(callback: () => void, ms: number): { cancel(): void } {
  if (ms <= 0) {
    const immediate = setImmediate(callback);
    return { cancel: () => clearImmediate(immediate) };
  }
  const timeout = setTimeout(callback, ms);
  return { cancel: () => clearTimeout(timeout) };
}
