/**
 * One delivery through the API: GET /deliveries/:id (the delivery and every attempt, in time
 * order) and POST /deliveries/:id/retry (send it again in a new series, when it is not in
 * flight).
 */
import { byCaller, writeAudit } from '../audit/audit-repository.js';
import type { Db } from '../db/database.js';
import { deleteDeadLetterOf } from '../dlq/dlq-repository.js';
import { AppError, notFound } from '../errors.js';
import type { Metrics } from '../observability/metrics.js';
import { objectScope, type Caller, type Principal } from '../tenancy/caller.js';
import { webhookDisabled } from '../webhooks/webhook-state.js';
import {
  attemptsOfDelivery,
  findDelivery,
  type AttemptRow,
  type DeliveryRow,
} from './delivery-read-repository.js';
import { enqueueDeliveries } from './enqueue.js';
import { lockDeliveryForResend, restartDelivery } from './restart-repository.js';

const iso = (value: Date | null): string | null => (value === null ? null : value.toISOString());

export function toDeliveryView(row: DeliveryRow) {
  return {
    id: row.id,
    event_id: row.event_id,
    webhook_id: row.webhook_id,
    tenant_id: row.tenant_id,
    status: row.status,
    attempt_count: row.attempt_count,
    next_attempt_at: iso(row.next_attempt_at),
    last_error: row.last_error,
    last_status_code: row.last_status_code,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
    succeeded_at: iso(row.succeeded_at),
  };
}

function toAttemptView(row: AttemptRow) {
  return {
    attempt_number: row.attempt_number,
    attempted_at: row.attempted_at.toISOString(),
    status_code: row.status_code,
    error: row.error,
    duration_ms: row.duration_ms,
    response_body: row.response_body,
  };
}

/** The answer of a single retry or resend (202). */
export interface RequeuedDelivery {
  delivery_id: string;
  status: 'pending';
  previous_status: string;
}

/** Statuses a delivery may be resent from; `pending` (queued or in flight) may not. */
const RESENDABLE = ['succeeded', 'failed', 'dead', 'paused'] as const;

export function createDeliveryService(deps: { db: Db; metrics: Metrics }) {
  const { db, metrics } = deps;
  return {
    async get(principal: Principal, id: string, tenantId?: string) {
      const delivery = await findDelivery(db, id, objectScope(principal, tenantId));
      if (!delivery) throw notFound('Delivery');
      const attempts = await attemptsOfDelivery(db, delivery.id);
      return { ...toDeliveryView(delivery), attempts: attempts.map(toAttemptView) };
    },

    async resend(caller: Caller, deliveryId: string, tenantId?: string): Promise<RequeuedDelivery> {
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
        await writeAudit(
          trx,
          byCaller(caller, {
            action: 'delivery.resent',
            objectType: 'delivery',
            objectId: deliveryId,
            tenantId: delivery.tenant_id,
            details: {
              webhook_id: delivery.webhook_id,
              previous_status: delivery.status,
              previous_attempts: delivery.attempt_count,
            },
          }),
        );
        return { delivery_id: deliveryId, status: 'pending' as const, previous_status: delivery.status };
      });
      metrics.dlqRetries.inc({ kind: 'resend' });
      return answer;
    },
  };
}
