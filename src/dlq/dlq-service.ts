/**
 * The dead-letter queue through the API: list, retry one (`POST /dlq/:id/retry`), retry every
 * match (`POST /dlq/retry`), delete one. A retry starts the delivery's new series
 * (delivery/restart-repository.ts) and enqueues attempt 1 in the transaction that takes the entry
 * out of the DLQ and writes the audit row. A single retry takes the tenant's fair place in the
 * queue; a bulk retry is queued behind every tenant's fresh traffic, in batches
 * (delivery/requeue-in-batches.ts), and answers once the last batch has committed.
 */
import { byCaller, writeAudit } from '../audit/audit-repository.js';
import type { Db } from '../db/database.js';
import { listAnswer, type ListAnswer } from '../db/page.js';
import { enqueueDeliveries } from '../delivery/enqueue.js';
import { BULK_BATCH_SIZE, requeueInBatches } from '../delivery/requeue-in-batches.js';
import { databaseNow, restartDelivery } from '../delivery/restart-repository.js';
import type { RequeuedDelivery } from '../delivery/delivery-service.js';
import { AppError, notFound } from '../errors.js';
import type { Metrics } from '../observability/metrics.js';
import { objectScope, tenantFilter, type Caller } from '../tenancy/caller.js';
import { webhookDisabled } from '../webhooks/webhook-state.js';
import {
  countDeadLettersOfDisabledWebhooks,
  listDeadLetters,
  removeDeadLetter,
  requeueDeadLetterBatch,
  type DeadLetterFilter,
  type DeadLetterRow,
} from './dlq-repository.js';
import type { BulkRetryBody, ListDlqQuery } from './dlq-schemas.js';

export type DeadLetterView = ReturnType<typeof toDeadLetterView>;

function toDeadLetterView(row: DeadLetterRow) {
  return {
    delivery_id: row.delivery_id,
    webhook_id: row.webhook_id,
    event_id: row.event_id,
    tenant_id: row.tenant_id,
    last_error: row.last_error,
    attempts: row.attempts,
    created_at: row.created_at.toISOString(),
  };
}

export interface DlqService {
  list(caller: Caller, query: ListDlqQuery): Promise<ListAnswer<DeadLetterView>>;
  retry(caller: Caller, deliveryId: string, tenantId?: string): Promise<RequeuedDelivery>;
  retryAll(
    caller: Caller,
    body: BulkRetryBody,
  ): Promise<{ requeued: number; skipped_webhook_disabled: number }>;
  remove(caller: Caller, deliveryId: string, tenantId?: string): Promise<void>;
}

export function createDlqService(deps: { db: Db; metrics: Metrics }): DlqService {
  const { db, metrics } = deps;

  return {
    async list(caller, query) {
      const { rows, total } = await listDeadLetters(db, {
        tenantId: tenantFilter(caller.principal, query.tenant_id),
        webhookId: query.webhook_id,
        since: query.since,
        until: query.until,
        limit: query.limit,
        offset: query.offset,
      });
      return listAnswer(rows.map(toDeadLetterView), total, query);
    },

    async retry(caller, deliveryId, tenantId) {
      const scope = objectScope(caller.principal, tenantId);
      const answer = await db.transaction().execute(async (trx) => {
        const entry = await removeDeadLetter(trx, deliveryId, scope);
        if (!entry) throw notFound('Dead-letter entry');
        // Sent now, it would only wait as `paused`; the caller should know instead.
        if (!entry.webhook_enabled) throw webhookDisabled();
        if (!(await restartDelivery(trx, deliveryId, ['dead']))) {
          throw new AppError('conflict', 'The delivery is no longer dead-lettered.');
        }
        await enqueueDeliveries(trx, [{ deliveryId, attempt: 1, tenantId: entry.tenant_id }]);
        await writeAudit(
          trx,
          byCaller(caller, {
            action: 'dlq.retried',
            objectType: 'delivery',
            objectId: deliveryId,
            tenantId: entry.tenant_id,
            details: { webhook_id: entry.webhook_id },
          }),
        );
        return { delivery_id: deliveryId, status: 'pending' as const, previous_status: 'dead' };
      });
      metrics.dlqRetries.inc({ kind: 'single' });
      return answer;
    },

    async retryAll(caller, body) {
      const filter: DeadLetterFilter = {
        tenantId: tenantFilter(caller.principal, body.tenant_id),
        webhookId: body.webhook_id,
        since: body.since,
        until: body.until,
      };
      const startedAt = await databaseNow(db);
      const filters = {
        webhook_id: body.webhook_id ?? null,
        since: body.since ?? null,
        until: body.until ?? null,
      };
      const requeued = await requeueInBatches(
        db,
        (trx) => requeueDeadLetterBatch(trx, filter, startedAt, BULK_BATCH_SIZE),
        (tenantId, count, batchNumber) =>
          byCaller(caller, {
            action: 'dlq.bulk_retried',
            objectType: 'dlq',
            objectId: null,
            tenantId,
            details: { count, batch: batchNumber, filters },
          }),
      );
      metrics.dlqRetries.inc({ kind: 'bulk' }, requeued);
      const skipped = await countDeadLettersOfDisabledWebhooks(db, filter);
      return { requeued, skipped_webhook_disabled: skipped };
    },

    async remove(caller, deliveryId, tenantId) {
      const scope = objectScope(caller.principal, tenantId);
      await db.transaction().execute(async (trx) => {
        const entry = await removeDeadLetter(trx, deliveryId, scope);
        if (!entry) throw notFound('Dead-letter entry');
        await writeAudit(
          trx,
          byCaller(caller, {
            action: 'dlq.deleted',
            objectType: 'delivery',
            objectId: deliveryId,
            tenantId: entry.tenant_id,
            details: { webhook_id: entry.webhook_id },
          }),
        );
      });
    },
  };
}
