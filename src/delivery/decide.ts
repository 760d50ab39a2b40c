/**
 * What an attempt's answer means for its delivery: pure, so every rule of it is unit-tested.
 */
import type { FinalState } from './delivery-repository.js';
import type { AttemptResult } from './http-client.js';
import { decideAfterFailure } from './retry-policy.js';

/** What became of one attempt; for metrics, logs and tests. */
export type AttemptOutcome =
  | 'succeeded'
  | 'retry_scheduled'
  | 'dead'
  /** 410 Gone: webhook disabled, delivery paused. */
  | 'gone';

export function decide(
  result: AttemptResult,
  attempt: number,
  retrySchedule: readonly number[],
  now: Date,
): { state: FinalState; outcome: AttemptOutcome } {
  if (result.ok) return { state: { status: 'succeeded' }, outcome: 'succeeded' };
  // A refused destination will be refused again: no point in retrying.
  if (result.permanent) return { state: { status: 'dead' }, outcome: 'dead' };
  if (result.statusCode === 410) return { state: { status: 'paused' }, outcome: 'gone' };
  const decision = decideAfterFailure(
    { attempt, statusCode: result.statusCode, retryAfter: result.responseHeaders?.['retry-after'] ?? null },
    retrySchedule,
    now,
  );
  if (decision.kind === 'dead') return { state: { status: 'dead' }, outcome: 'dead' };
  // Cut short by a graceful stop: the attempt counts, and the next one is due at once.
  const delayMs = result.interrupted ? 0 : decision.delayMs;
  return {
    state: { status: 'failed', nextAttemptAt: new Date(now.getTime() + delayMs) },
    outcome: 'retry_scheduled',
  };
}
