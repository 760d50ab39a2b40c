/**
 * What happens after a failed attempt. Attempt n (1-based) failed: wait `schedule[n-1]` seconds
 * (plus up to 20% jitter, never less) and try again; when the schedule is spent the delivery is
 * dead. A `Retry-After` on 429/503 is honoured — the wait is at least what the receiver asked
 * for, capped at one hour — but never shortens our own backoff.
 */

export const MAX_JITTER = 0.2;
export const RETRY_AFTER_CAP_MS = 3600 * 1000;

export type RetryDecision = { kind: 'retry'; delayMs: number } | { kind: 'dead' };

export interface FailedAttempt {
  /** The number of the attempt that just failed, 1 for the first. */
  attempt: number;
  statusCode: number | null;
  /** The raw `Retry-After` header, if any. */
  retryAfter: string | null;
}

/** The most attempts a delivery gets in one series: the first plus one per scheduled retry. */
export function maxAttempts(schedule: readonly number[]): number {
  return 1 + schedule.length;
}

export function decideAfterFailure(
  failed: FailedAttempt,
  schedule: readonly number[],
  now: Date = new Date(),
  random: () => number = Math.random,
): RetryDecision {
  const seconds = schedule[failed.attempt - 1];
  if (seconds === undefined) return { kind: 'dead' };
  let delayMs = seconds * 1000 * (1 + MAX_JITTER * random());
  if (failed.statusCode === 429 || failed.statusCode === 503) {
    const asked = parseRetryAfter(failed.retryAfter, now);
    if (asked !== undefined) delayMs = Math.max(delayMs, Math.min(asked, RETRY_AFTER_CAP_MS));
  }
  return { kind: 'retry', delayMs: Math.round(delayMs) };
}

/** `Retry-After` as milliseconds from `now`: delta-seconds or an HTTP date. Undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now: Date): number | undefined {
  if (value === null || value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  // An HTTP date needs letters (a weekday or month); a bare number in another shape is not one.
  if (!/[a-z]/i.test(trimmed)) return undefined;
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now.getTime());
}
