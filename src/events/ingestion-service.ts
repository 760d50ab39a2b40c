/**
 * POST /events: the event, one delivery per matching enabled webhook, and one job per
 * delivery commit in one transaction before the answer. Concurrent requests share that
 * transaction (group-commit.ts); a request with an Idempotency-Key takes its own, which also
 * holds the key.
 */
import { randomUUID } from 'node:crypto';
import type { Db } from '../db/database.js';
import { enqueueDeliveries } from '../delivery/enqueue.js';
import { AppError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { ensureTenant } from '../tenancy/tenant-repository.js';
import {
  claimIdempotencyKey,
  findIdempotentResponse,
  insertEvents,
  insertMatchingDeliveries,
  saveIdempotentResponse,
  type NewEvent,
} from './event-repository.js';
import { filtersMatching } from './event-type-match.js';
import { createGroupCommitter, type GroupCommitOptions } from './group-commit.js';

export interface IngestRequest {
  tenantId: string;
  type: string;
  payload: Record<string, unknown>;
  idempotencyKey?: string;
}

/** The 202 answer; `replayed` when it is the stored first answer for an Idempotency-Key. */
export interface IngestResult {
  event_id: string;
  webhooks_queued: number;
  delivery_ids: string[];
  replayed: boolean;
}

export interface IngestionService {
  ingest(request: IngestRequest): Promise<IngestResult>;
}

export type BatchingOptions = Pick<
  GroupCommitOptions<unknown, unknown>,
  'maxBatchSize' | 'maxWaitMs' | 'maxConcurrentBatches'
>;

export const DEFAULT_BATCHING: BatchingOptions = { maxBatchSize: 200, maxWaitMs: 1, maxConcurrentBatches: 4 };

const toNewEvent = (request: IngestRequest): NewEvent => ({
  id: randomUUID(),
  tenantId: request.tenantId,
  type: request.type,
  payload: request.payload,
  idempotencyKey: request.idempotencyKey ?? null,
  filters: filtersMatching(request.type),
});

/** Inserts the events, their deliveries and their jobs; call inside a transaction. */
export async function storeEvents(db: Db, events: readonly NewEvent[]): Promise<IngestResult[]> {
  await insertEvents(db, events);
  const deliveries = await insertMatchingDeliveries(db, events);
  await enqueueDeliveries(
    db,
    deliveries.map((d) => ({ deliveryId: d.id, attempt: 1, tenantId: d.tenant_id })),
  );
  const byEvent = new Map<string, string[]>(events.map((e) => [e.id, []]));
  for (const d of deliveries) byEvent.get(d.event_id)!.push(d.id);
  return events.map((e) => {
    const ids = byEvent.get(e.id)!;
    return { event_id: e.id, webhooks_queued: ids.length, delivery_ids: ids, replayed: false };
  });
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
  metrics: Pick<Metrics, 'eventsIngested'>;
  logger: Logger;
  batching?: Partial<BatchingOptions>;
  onBatch?: GroupCommitOptions<NewEvent, IngestResult>['onBatch'];
}): IngestionService {
  const { db, metrics, logger } = deps;

  const commitEvents = async (events: NewEvent[]): Promise<IngestResult[]> => {
    const results = await db.transaction().execute((trx) => storeEvents(trx, events));
    metrics.eventsIngested.inc(events.length);
    return results;
  };

  const committer = createGroupCommitter<NewEvent, IngestResult>({
    ...DEFAULT_BATCHING,
    ...deps.batching,
    async commitBatch(events) {
      return (await commitEvents(events)).map((value) => ({ status: 'fulfilled', value }));
    },
    async commitOne(event) {
      try {
        return (await commitEvents([event]))[0]!;
      } catch (err) {
        throw asInputError(err);
      }
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
        const [result] = await storeEvents(trx, [event]);
        const { replayed: _, ...answer } = result!;
        await saveIdempotentResponse(trx, request.tenantId, key, answer);
        return { kind: 'created' as const, created: result! };
      });
      if (outcome.kind === 'created') {
        metrics.eventsIngested.inc(1);
        return outcome.created;
      }
      if (outcome.stored) {
        // Rebuilt field by field: jsonb does not keep the order the first answer had.
        const stored = outcome.stored as Omit<IngestResult, 'replayed'>;
        return {
          event_id: stored.event_id,
          webhooks_queued: stored.webhooks_queued,
          delivery_ids: stored.delivery_ids,
          replayed: true,
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
