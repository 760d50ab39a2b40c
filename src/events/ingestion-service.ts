/**
 * POST /events: the event, one delivery per matching enabled webhook, and for each a job or (in
 * a process that delivers) a lease for this process, commit in one transaction before the
 * answer. Concurrent requests share that transaction (db/group-commit.ts); a request with an
 * Idempotency-Key takes its own, which also holds the key.
 */
import { randomUUID } from 'node:crypto';
import type { Db } from '../db/database.js';
import { AppError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { currentTraceparent } from '../observability/trace-context.js';
import type { Metrics } from '../observability/metrics.js';
import { admitEvents, type Admission } from '../tenancy/event-rate-limit.js';
import { ensureTenant } from '../tenancy/tenant-repository.js';
import {
  claimIdempotencyKey,
  findIdempotentResponse,
  storeEventBatch,
  saveIdempotentResponse,
  type NewEvent,
} from './event-repository.js';
import { filtersMatching } from './event-type-match.js';
import { createGroupCommitter, type GroupCommitOptions } from '../db/group-commit.js';
import type { DirectDispatch } from '../delivery/deliver-batch.js';
import type { LoadedDelivery } from '../delivery/delivery-repository.js';
import { MAX_JOB_DELIVERIES } from '../delivery/enqueue.js';

export interface IngestRequest {
  tenantId: string;
  type: string;
  payload: Record<string, unknown>;
  idempotencyKey?: string;
}

/** The tenant's events-per-second window after this request, for the RateLimit-* headers. */
export interface RateLimitState {
  limit: number;
  remaining: number;
  resetSeconds: number;
}

/** The 202 answer; `replayed` when it is the stored first answer for an Idempotency-Key. */
export interface IngestResult {
  event_id: string;
  webhooks_queued: number;
  delivery_ids: string[];
  replayed: boolean;
  rateLimit?: RateLimitState;
}

const rateLimitState = (admission: Admission): RateLimitState => ({
  limit: admission.limit,
  remaining: admission.remaining,
  resetSeconds: admission.resetSeconds,
});

/** The RateLimit-* header fields (IETF draft names, as GitHub and others send them). */
export function rateLimitHeaders(state: RateLimitState): Record<string, string> {
  return {
    'RateLimit-Limit': String(state.limit),
    'RateLimit-Remaining': String(state.remaining),
    'RateLimit-Reset': String(state.resetSeconds),
  };
}

function rateLimited(tenantId: string, admission: Admission): AppError {
  // A limit of 0 is not a wait: no retry would succeed until an operator raises it.
  if (admission.limit === 0) {
    return new AppError(
      'events_disabled',
      `Tenant ${tenantId} may not send events: its max_events_per_sec is 0.`,
      { headers: rateLimitHeaders(rateLimitState(admission)) },
    );
  }
  return new AppError(
    'rate_limited',
    `Tenant ${tenantId} is over its limit of ${admission.limit} events per second; retry after ${admission.resetSeconds} s.`,
    {
      headers: {
        'Retry-After': String(admission.resetSeconds),
        ...rateLimitHeaders(rateLimitState(admission)),
      },
    },
  );
}

export interface IngestionService {
  ingest(request: IngestRequest): Promise<IngestResult>;
}

export type BatchingOptions = Pick<
  GroupCommitOptions<unknown, unknown>,
  'maxBatchSize' | 'maxWaitMs' | 'maxConcurrentBatches' | 'concurrentFrom'
>;

/**
 * One batch at a time while the load is light (they grow while one commits: fewer statements per
 * event); up to three overlap once 50 requests wait (a commit's round trips stop being the limit).
 */
export const DEFAULT_BATCHING: BatchingOptions = {
  maxBatchSize: 200,
  maxWaitMs: 1,
  maxConcurrentBatches: 3,
  concurrentFrom: 50,
};

const withTraceparent = (traceparent: string | undefined) => (traceparent ? { traceparent } : {});

const toNewEvent = (request: IngestRequest): NewEvent => ({
  id: randomUUID(),
  tenantId: request.tenantId,
  type: request.type,
  payload: request.payload,
  idempotencyKey: request.idempotencyKey ?? null,
  filters: filtersMatching(request.type),
  // Each request its own, though a batch of them commits in one transaction.
  ...withTraceparent(currentTraceparent()),
});

/** Takes from each tenant's events-per-second window; the events it lets through, and the admissions. */
async function admit(
  db: Db,
  candidates: readonly NewEvent[],
  options: { waitForDisk: boolean },
): Promise<{ admitted: NewEvent[]; admissions: Map<string, Admission> }> {
  const requested = new Map<string, number>();
  for (const e of candidates) requested.set(e.tenantId, (requested.get(e.tenantId) ?? 0) + 1);
  const admissions = await admitEvents(db, requested, options);
  const left = new Map([...admissions].map(([tenant, a]) => [tenant, a.admitted]));
  const admitted = candidates.filter((e) => {
    const n = left.get(e.tenantId) ?? 0;
    left.set(e.tenantId, n - 1);
    return n > 0;
  });
  return { admitted, admissions };
}

/** Each candidate's answer: its stored result, or a 429 when the limit refused it (not stored). */
function answers(
  candidates: readonly NewEvent[],
  admissions: Map<string, Admission>,
  stored: readonly IngestResult[],
): PromiseSettledResult<IngestResult>[] {
  const byId = new Map(stored.map((r) => [r.event_id, r]));
  return candidates.map((e): PromiseSettledResult<IngestResult> => {
    const admission = admissions.get(e.tenantId)!;
    const result = byId.get(e.id);
    return result
      ? { status: 'fulfilled', value: { ...result, rateLimit: rateLimitState(admission) } }
      : { status: 'rejected', reason: rateLimited(e.tenantId, admission) };
  });
}

/**
 * Admission in one statement of its own, before the events are stored: the tenant's window
 * row is locked only for that moment, not while a whole batch is written. Its commit need not
 * wait for the disk: losing the latest counts in a crash only lets a little more through
 * afterwards. Should storing then fail, the tokens stay spent — the limit errs on the side of
 * refusing, never of letting more through.
 */
const admitNow = (db: Db, candidates: readonly NewEvent[]) => admit(db, candidates, { waitForDisk: false });

/**
 * Admits and stores in the caller's transaction (the keyed path, one event): a refused event is
 * not stored, its answer is a 429.
 */
export async function storeEvents(
  db: Db,
  candidates: readonly NewEvent[],
): Promise<PromiseSettledResult<IngestResult>[]> {
  const { admitted, admissions } = await admit(db, candidates, { waitForDisk: true });
  return answers(candidates, admissions, (await insertAdmitted(db, admitted)).results);
}

/** The tenant's window as it stands, without taking from it (for replayed answers). */
async function currentRateLimit(db: Db, tenantId: string): Promise<RateLimitState | undefined> {
  const admission = (await admitEvents(db, new Map([[tenantId, 0]]))).get(tenantId);
  return admission ? rateLimitState(admission) : undefined;
}

/**
 * Stores admitted events. With `direct`, up to `limit` of their deliveries are leased to this
 * process and answered in `leased`, for it to send once the statement has committed.
 */
async function insertAdmitted(
  db: Db,
  events: readonly NewEvent[],
  direct?: { owner: string; limit: number },
): Promise<{ results: IngestResult[]; leased: LoadedDelivery[] }> {
  if (events.length === 0) return { results: [], leased: [] };
  const deliveries = await storeEventBatch(db, events, direct);
  const byEvent = new Map<string, string[]>(events.map((e) => [e.id, []]));
  const eventsById = new Map(events.map((e) => [e.id, e]));
  const leased: LoadedDelivery[] = [];
  for (const d of deliveries) {
    byEvent.get(d.event_id)!.push(d.id);
    if (d.leased) {
      const event = eventsById.get(d.event_id)!;
      leased.push({
        ...d.leased,
        id: d.id,
        attempt: 1,
        event_id: d.event_id,
        webhook_id: d.webhook_id,
        tenant_id: d.tenant_id,
        event_type: event.type,
        payload: event.payload,
        traceparent: event.traceparent ?? null,
      });
    }
  }
  const results = events.map((e) => {
    const ids = byEvent.get(e.id)!;
    return { event_id: e.id, webhooks_queued: ids.length, delivery_ids: ids, replayed: false };
  });
  return { results, leased };
}

/**
 * A request PostgreSQL refuses to store because of what it holds (class 22, data exception,
 * e.g. `\u0000` or a lone surrogate in the payload) is the caller's error. Its message is not
 * passed on: PostgreSQL quotes the offending data.
 */
function asInputError(err: unknown): unknown {
  const code = (err as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && (code.startsWith('22') || code === '54001')) {
    return new AppError('invalid_request', 'The event holds a value that cannot be stored.', {
      details: [
        {
          field: '/payload',
          message: 'holds text PostgreSQL cannot store (e.g. \\u0000 or a lone surrogate)',
        },
      ],
      cause: err,
    });
  }
  return err;
}

export function createIngestionService(deps: {
  db: Db;
  metrics: Pick<Metrics, 'eventsIngested' | 'rateLimited'>;
  logger: Logger;
  batching?: Partial<BatchingOptions>;
  onBatch?: GroupCommitOptions<NewEvent, IngestResult>['onBatch'];
  /** This process's delivery engine (ROLE=all): new deliveries go to it directly while it has room. */
  dispatch?: DirectDispatch;
}): IngestionService {
  const { db, metrics, logger } = deps;

  const commitEvents = async (events: NewEvent[]): Promise<PromiseSettledResult<IngestResult>[]> => {
    const { admitted, admissions } = await admitNow(db, events);
    // One statement (storeEventBatch), so its own transaction: committed, and on disk, before any answer.
    const room = deps.dispatch?.reserve(MAX_JOB_DELIVERIES) ?? 0;
    let stored: Awaited<ReturnType<typeof insertAdmitted>> | undefined;
    try {
      stored = await insertAdmitted(
        db,
        admitted,
        room > 0 ? { owner: deps.dispatch!.leaseOwner, limit: room } : undefined,
      );
    } finally {
      if (room > 0) deps.dispatch!.release(room - (stored?.leased.length ?? 0));
    }
    // Sent once this turn's answers are written: the 202s do not wait for the requests' signing
    // and writing, and the requests go out a moment later (the next turn of the event loop).
    const leased = stored.leased;
    if (leased.length > 0) setImmediate(() => deps.dispatch!.send(leased));
    const results = answers(events, admissions, stored.results);
    const accepted = results.filter((r) => r.status === 'fulfilled').length;
    metrics.eventsIngested.inc(accepted);
    if (accepted < results.length)
      metrics.rateLimited.inc({ limit: 'events_per_sec' }, results.length - accepted);
    return results;
  };

  const committer = createGroupCommitter<NewEvent, IngestResult>({
    ...DEFAULT_BATCHING,
    ...deps.batching,
    commitBatch: commitEvents,
    async commitOne(event) {
      let settled: PromiseSettledResult<IngestResult>;
      try {
        settled = (await commitEvents([event]))[0]!;
      } catch (err) {
        throw asInputError(err);
      }
      if (settled.status === 'rejected') throw settled.reason;
      return settled.value;
    },
    onBatch(report) {
      if (report.fellBack) {
        const error = report.error as { code?: string; message?: string } | undefined;
        logger.warn('event batch failed; committed its requests one by one', {
          size: report.size,
          pg_code: error?.code,
        });
      }
      deps.onBatch?.(report);
    },
  });

  const ingestIdempotent = async (request: IngestRequest, key: string): Promise<IngestResult> => {
    for (let round = 0; round < 3; round++) {
      const event = toNewEvent(request);
      const outcome = await db.transaction().execute(async (trx) => {
        if (!(await claimIdempotencyKey(trx, request.tenantId, key, event.id))) {
          // Another request holds the key; it has committed by now (the claim waited for it).
          return {
            kind: 'replayed' as const,
            stored: await findIdempotentResponse(trx, request.tenantId, key),
          };
        }
        const [settled] = await storeEvents(trx, [event]);
        // Refused by the rate limit: throwing rolls the key back too, so a later retry may succeed.
        if (settled!.status === 'rejected') throw settled!.reason;
        const { replayed: _, rateLimit: __, ...answer } = settled!.value;
        await saveIdempotentResponse(trx, request.tenantId, key, answer);
        return { kind: 'created' as const, created: settled!.value };
      });
      if (outcome.kind === 'created') {
        metrics.eventsIngested.inc(1);
        return outcome.created;
      }
      if (outcome.stored) {
        // Rebuilt field by field: jsonb does not keep the order the first answer had.
        const stored = outcome.stored as Omit<IngestResult, 'replayed'>;
        const rateLimit = await currentRateLimit(db, request.tenantId);
        return {
          event_id: stored.event_id,
          webhooks_queued: stored.webhooks_queued,
          delivery_ids: stored.delivery_ids,
          replayed: true,
          ...(rateLimit ? { rateLimit } : {}),
        };
      }
      // The row went away between the claim and the read (expired and purged): claim again.
    }
    throw new AppError('conflict', 'The Idempotency-Key is in use by another request; try again.');
  };

  return {
    async ingest(request) {
      await ensureTenant(db, request.tenantId);
      if (request.idempotencyKey !== undefined) {
        try {
          return await ingestIdempotent(request, request.idempotencyKey);
        } catch (err) {
          throw asInputError(err);
        }
      }
      return committer.submit(toNewEvent(request));
    },
  };
}
