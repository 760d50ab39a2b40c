/**
 * Sending deliveries again: a DLQ entry (`POST /dlq/:id/retry`), every matching entry
 * (`POST /dlq/retry`), any finished delivery (`POST /deliveries/:id/retry`), or every failed and
 * dead delivery of a webhook since a time (`POST /webhooks/:id/recover`). Also the DLQ's list and
 * deletion.
 *
 * Each starts a new series (see dlq-repository) and enqueues attempt 1 in the transaction that
 * takes the entry out of the DLQ and writes the audit row. A single retry or resend takes the
 * tenant's fair place in the queue; bulk work is queued at BULK_PRIORITY, behind every tenant's
 * fresh traffic, and commits in batches of BULK_BATCH_SIZE, so neither a giant transaction nor
 * a wall of jobs in front of new events builds up. Bulk calls answer when the last batch has
 * committed.
 */
import { tenantFilter } from '../api/auth.js';
import { listAnswer, type ListAnswer } from '../api/list-answer.js';
import { objectScope } from '../api/tenant-scope.js';
import { actorOf, writeAudit } from '../audit/audit-repository.js';
import type { Db } from '../db/database.js';
import { BULK_PRIORITY, enqueueDeliveries } from '../delivery/enqueue.js';
import { AppError, notFound } from '../errors.js';
import type { Metrics } from '../observability/metrics.js';
import { findWebhook } from '../webhooks/webhook-repository.js';
import type { Caller } from '../webhooks/webhook-service.js';
import {
  countDeadLettersOfDisabledWebhooks,
  databaseNow,
  deleteDeadLetterOf,
  listDeadLetters,
  lockDeliveryForResend,
  removeDeadLetter,
  requeueDeadLetterBatch,
  requeueRecoverableBatch,
  restartDelivery,
  type DeadLetterFilter,
  type DeadLetterRow,
  type RequeuedRow,
} from './dlq-repository.js';
import type { BulkRetryBody, ListDlqQuery, RecoverBody } from './dlq-schemas.js';

/** Deliveries per bulk transaction: small enough to commit in milliseconds. */
export const BULK_BATCH_SIZE = 500;

/** Statuses a delivery may be resent from; `pending` (queued or in flight) may not. */
const RESENDABLE = ['succeeded', 'failed', 'dead', 'paused'] as const;

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

export interface RequeuedDelivery {
  delivery_id: string;
  status: 'pending';
  previous_status: string;
}

const webhookDisabled = (): AppError =>
  new AppError('conflict', 'The webhook is disabled; enable it (PATCH enabled: true) and retry.');

export interface DlqService {
  list(caller: Caller, query: ListDlqQuery): Promise<ListAnswer<DeadLetterView>>;
  retry(caller: Caller, deliveryId: string, tenantId?: string): Promise<RequeuedDelivery>;
  retryAll(
    caller: Caller,
    body: BulkRetryBody,
  ): Promise<{ requeued: number; skipped_webhook_disabled: number }>;
  remove(caller: Caller, deliveryId: string, tenantId?: string): Promise<void>;
  resend(caller: Caller, deliveryId: string, tenantId?: string): Promise<RequeuedDelivery>;
  recover(caller: Caller, webhookId: string, body: RecoverBody): Promise<{ requeued: number }>;
}

export function createDlqService(deps: { db: Db; metrics: Metrics }): DlqService {
  const { db, metrics } = deps;

  /**
   * Runs `batch` in its own transaction until it returns fewer than a full batch. Each batch
   * enqueues its deliveries behind fresh traffic and writes one audit row per tenant it touched.
   */
  async function inBatches(
    batch: (trx: Db) => Promise<RequeuedRow[]>,
    audit: (tenantId: string, count: number, batchNumber: number) => Parameters<typeof writeAudit>[1],
  ): Promise<number> {
    let total = 0;
    for (let batchNumber = 1; ; batchNumber++) {
      const rows = await db.transaction().execute(async (trx) => {
        const taken = await batch(trx);
        await enqueueDeliveries(
          trx,
          taken.map((row) => ({
            deliveryId: row.id,
            attempt: 1,
            priority: BULK_PRIORITY,
            tenantId: row.tenant_id,
          })),
        );
        const perTenant = new Map<string, number>();
        for (const row of taken) perTenant.set(row.tenant_id, (perTenant.get(row.tenant_id) ?? 0) + 1);
        for (const [tenantId, count] of perTenant) await writeAudit(trx, audit(tenantId, count, batchNumber));
        return taken;
      });
      total += rows.length;
      if (rows.length < BULK_BATCH_SIZE) return total;
    }
  }

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
        await writeAudit(trx, {
          actor: actorOf(caller.principal),
          action: 'dlq.retried',
          objectType: 'delivery',
          objectId: deliveryId,
          tenantId: entry.tenant_id,
          requestId: caller.requestId,
          details: { webhook_id: entry.webhook_id },
        });
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
      const requeued = await inBatches(
        (trx) => requeueDeadLetterBatch(trx, filter, startedAt, BULK_BATCH_SIZE),
        (tenantId, count, batchNumber) => ({
          actor: actorOf(caller.principal),
          action: 'dlq.bulk_retried',
          objectType: 'dlq',
          objectId: null,
          tenantId,
          requestId: caller.requestId,
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
        await writeAudit(trx, {
          actor: actorOf(caller.principal),
          action: 'dlq.deleted',
          objectType: 'delivery',
          objectId: deliveryId,
          tenantId: entry.tenant_id,
          requestId: caller.requestId,
          details: { webhook_id: entry.webhook_id },
        });
      });
    },

    async resend(caller, deliveryId, tenantId) {
      const scope = objectScope(caller.principal, tenantId);
      const answer = await db.transaction().execute(async (trx) => {
        const delivery = await lockDeliveryForResend(trx, deliveryId, scope);
        if (!delivery) throw notFound('Delivery');
        if (!(RESENDABLE as readonly string[]).includes(delivery.status)) {
          throw new AppError(
            'conflict',
            'The delivery is queued or in flight; it can be sent again once it has finished.',
          );
        }
        if (!delivery.webhook_enabled) throw webhookDisabled();
        await restartDelivery(trx, deliveryId, RESENDABLE);
        if (delivery.status === 'dead') await deleteDeadLetterOf(trx, deliveryId);
        await enqueueDeliveries(trx, [{ deliveryId, attempt: 1, tenantId: delivery.tenant_id }]);
        await writeAudit(trx, {
          actor: actorOf(caller.principal),
          action: 'delivery.resent',
          objectType: 'delivery',
          objectId: deliveryId,
          tenantId: delivery.tenant_id,
          requestId: caller.requestId,
          details: {
            webhook_id: delivery.webhook_id,
            previous_status: delivery.status,
            previous_attempts: delivery.attempt_count,
          },
        });
        return { delivery_id: deliveryId, status: 'pending' as const, previous_status: delivery.status };
      });
      metrics.dlqRetries.inc({ kind: 'resend' });
      return answer;
    },

    async recover(caller, webhookId, body) {
      const webhook = await findWebhook(db, webhookId, objectScope(caller.principal, body.tenant_id));
      if (!webhook) throw notFound('Webhook');
      if (!webhook.enabled) throw webhookDisabled();
      const startedAt = await databaseNow(db);
      const window = { since: new Date(body.since), until: body.until ? new Date(body.until) : undefined };
      const requeued = await inBatches(
        (trx) => requeueRecoverableBatch(trx, webhookId, window, startedAt, BULK_BATCH_SIZE),
        (tenantId, count, batchNumber) => ({
          actor: actorOf(caller.principal),
          action: 'webhook.recovered',
          objectType: 'webhook',
          objectId: webhookId,
          tenantId,
          requestId: caller.requestId,
          details: { count, batch: batchNumber, since: body.since, until: body.until ?? null },
        }),
      );
      metrics.dlqRetries.inc({ kind: 'recover' }, requeued);
      return { requeued };
    },
  };
}
