/**
 * Group commit: requests that arrive close together share one transaction. A commit costs
 * about the same for one event as for a hundred (PostgreSQL serialises commits that carry a
 * NOTIFY, and `add_jobs` sends one per call), so sharing it is what makes ingestion fast.
 *
 * The first item to arrive starts a short wait (`maxWaitMs`); everything that arrives in it,
 * up to `maxBatchSize`, is committed together. While `maxConcurrentBatches` commits are in
 * flight, newcomers wait and go out as soon as one finishes, so batches grow with the load.
 * When a batch fails, each of its items is committed on its own, so only a bad one fails.
 */
export interface GroupCommitOptions<I, R> {
  maxBatchSize: number;
  maxWaitMs: number;
  maxConcurrentBatches: number;
  /** Commits all items in one transaction; answers in the same order, or throws for all. */
  commitBatch(items: I[]): Promise<R[]>;
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
  let timer: NodeJS.Timeout | undefined;
  let running = 0;
  let inFlightItems = 0;

  const flush = (): void => {
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    while (waiting.length > 0 && running < options.maxConcurrentBatches) {
      void run(waiting.splice(0, options.maxBatchSize));
    }
  };

  const run = async (batch: Waiting<I, R>[]): Promise<void> => {
    running++;
    inFlightItems += batch.length;
    const started = performance.now();
    let fellBack = false;
    let batchError: unknown;
    try {
      if (batch.length === 1) {
        await settleOne(batch[0]!);
      } else {
        try {
          const results = await options.commitBatch(batch.map((w) => w.item));
          batch.forEach((w, i) => w.resolve(results[i]!));
        } catch (err) {
          fellBack = true;
          batchError = err;
          await Promise.all(batch.map(settleOne));
        }
      }
    } finally {
      running--;
      inFlightItems -= batch.length;
      options.onBatch?.({
        size: batch.length,
        durationMs: performance.now() - started,
        fellBack,
        ...(fellBack ? { error: batchError } : {}),
      });
      // Whoever arrived meanwhile has waited long enough.
      if (waiting.length > 0) flush();
    }
  };

  const settleOne = async (w: Waiting<I, R>): Promise<void> => {
    try {
      w.resolve(await options.commitOne(w.item));
    } catch (err) {
      w.reject(err);
    }
  };

  return {
    submit(item) {
      return new Promise<R>((resolve, reject) => {
        waiting.push({ item, resolve, reject });
        if (waiting.length >= options.maxBatchSize) flush();
        else if (timer === undefined && running < options.maxConcurrentBatches) {
          timer = setTimeout(flush, options.maxWaitMs);
        }
      });
    },
    pending: () => waiting.length + inFlightItems,
  };
}
