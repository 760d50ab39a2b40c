/**
 * Claims and attempt ends, shared between a process's workers: what arrives while a statement
 * is running goes out together in the next one (db/group-commit). One claim statement serves
 * many deliveries, and one statement records many attempts, so the database work per delivery
 * falls as the load grows, without making a lone delivery wait (at rest a request goes out at
 * the end of the current round of I/O callbacks).
 */
import type { Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import { createGroupCommitter } from '../db/group-commit.js';
import {
  claimAttempts,
  finishAttempts,
  type AttemptClaim,
  type ClaimedDelivery,
  type FinishedAttempt,
} from './delivery-repository.js';

export interface AttemptBatches {
  /** The claimed attempt, or undefined when the job is stale (see `claimAttempts`). */
  claim(request: AttemptClaim): Promise<ClaimedDelivery | undefined>;
  /** True when recorded; false when the claim was no longer ours (nothing written). */
  finish(finished: FinishedAttempt): Promise<boolean>;
}

const MAX_BATCH = 200;
const CONCURRENT_BATCHES = 2;

export function createAttemptBatches(db: Kysely<Database>, leaseOwner: string): AttemptBatches {
  // A batch of one, or a batch that failed and is retried item by item.
  const one = unbatchedAttempts(db, leaseOwner);
  const claims = createGroupCommitter<AttemptClaim, ClaimedDelivery | undefined>({
    maxBatchSize: MAX_BATCH,
    maxWaitMs: 0,
    maxConcurrentBatches: CONCURRENT_BATCHES,
    async commitBatch(requests) {
      const claimed = await claimAttempts(db, requests, leaseOwner);
      // Two jobs of one delivery in one batch: the claim is the first one's; the other is stale.
      const answered = new Set<string>();
      return requests.map(({ deliveryId }) => {
        const claim = answered.has(deliveryId) ? undefined : claimed.get(deliveryId);
        answered.add(deliveryId);
        return { status: 'fulfilled', value: claim };
      });
    },
    commitOne: one.claim,
  });
  const finishes = createGroupCommitter<FinishedAttempt, boolean>({
    maxBatchSize: MAX_BATCH,
    maxWaitMs: 0,
    maxConcurrentBatches: CONCURRENT_BATCHES,
    async commitBatch(items) {
      const recorded = await finishAttempts(db, items);
      return items.map(({ claim }) => ({ status: 'fulfilled', value: recorded.has(claim.id) }));
    },
    commitOne: one.finish,
  });
  return { claim: (request) => claims.submit(request), finish: (item) => finishes.submit(item) };
}

/** The same, one statement per call: for a caller without a worker (tests, tools). */
export function unbatchedAttempts(db: Kysely<Database>, leaseOwner: string): AttemptBatches {
  return {
    claim: async (request) => (await claimAttempts(db, [request], leaseOwner)).get(request.deliveryId),
    finish: async (item) => (await finishAttempts(db, [item])).has(item.claim.id),
  };
}
