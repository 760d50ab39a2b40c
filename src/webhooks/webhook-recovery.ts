/**
 * POST /webhooks/:id/recover: every `failed` or `dead` delivery of a webhook created in a time
 * window starts a new series, in batches queued behind fresh traffic (requeue-in-batches.ts).
 * The answer comes once the last batch has committed.
 */
import { byCaller } from '../audit/audit-repository.js';
import type { Db } from '../db/database.js';
import { requeueInBatches } from '../delivery/requeue-in-batches.js';
import { databaseNow, requeueRecoverableBatch } from '../delivery/restart-repository.js';
import { BULK_BATCH_SIZE } from '../delivery/requeue-in-batches.js';
import { notFound } from '../errors.js';
import type { Metrics } from '../observability/metrics.js';
import { objectScope, type Caller } from '../tenancy/caller.js';
import { findWebhook } from './webhook-repository.js';
import type { RecoverBody } from './webhook-schemas.js';
import { webhookDisabled } from './webhook-state.js';

export async function recoverWebhook(
  deps: { db: Db; metrics: Metrics },
  caller: Caller,
  webhookId: string,
  body: RecoverBody,
): Promise<{ requeued: number }> {
  const { db, metrics } = deps;
  const webhook = await findWebhook(db, webhookId, objectScope(caller.principal, body.tenant_id));
  if (!webhook) throw notFound('Webhook');
  if (!webhook.enabled) throw webhookDisabled();
  const startedAt = await databaseNow(db);
  const window = { since: new Date(body.since), until: body.until ? new Date(body.until) : undefined };
  const requeued = await requeueInBatches(
    db,
    (trx) => requeueRecoverableBatch(trx, webhookId, window, startedAt, BULK_BATCH_SIZE),
    (tenantId, count, batchNumber) =>
      byCaller(caller, {
        action: 'webhook.recovered',
        objectType: 'webhook',
        objectId: webhookId,
        tenantId,
        details: { count, batch: batchNumber, since: body.since, until: body.until ?? null },
      }),
  );
  metrics.dlqRetries.inc({ kind: 'recover' }, requeued);
  return { requeued };
}
