/**
 * A webhook's state, owned here: enabled or disabled (with the reason, `disabled_at` and an
 * audit row), and its health (`failing_since`: set by the first failed attempt of a run,
 * cleared by any success). Every change runs in the caller's transaction, so it commits with
 * whatever caused it: the attempt that got a 410, the dead letter that filled the DLQ, the
 * sweep, or the PATCH.
 *
 * A disabled webhook's deliveries wait as `paused` when their jobs come up; enabling it queues
 * them again, each continuing its series. Disabling and enabling emit `hookrelay.webhook.disabled`
 * and `hookrelay.webhook.enabled` into the tenant's stream, in the same transaction.
 */
import { sql, type Kysely, type RawBuilder } from 'kysely';
import { writeAudit } from '../audit/audit-repository.js';
import type { Database } from '../db/database.js';
import { enqueueDeliveries } from '../delivery/enqueue.js';
import { AppError } from '../errors.js';
import { emitOperationalEvent } from '../events/operational-events.js';
import type { WebhookRow } from './webhook-repository.js';

/** `disabled_reason` of each automatic disable. */
export const GONE_REASON = '410 Gone from endpoint';
export const DLQ_FULL_REASON = 'dead-letter queue full';
export const failingReason = (failingSince: Date): string =>
  `failing continuously since ${failingSince.toISOString()}`;
export const disabledByReason = (actor: string): string => `disabled by ${actor}`;

export interface Disable {
  webhookId: string;
  tenantId: string;
  reason: string;
  /** `system` for automatic disables, else the caller (see audit-repository's actorOf). */
  actor?: string;
  requestId?: string | null;
  /** More for the audit row, beside the reason. */
  details?: Record<string, unknown>;
  /** The disable is itself a failure (410 Gone): start the failing run if none is open. */
  failing?: boolean;
}

/**
 * Disables the webhook if it is enabled, and writes a `webhook.disabled` audit row with the
 * reason. Answers the updated row, or undefined when it was already disabled (nothing written).
 */
export async function disableWebhook(
  db: Kysely<Database>,
  disable: Disable,
): Promise<WebhookRow | undefined> {
  const { rows } = await sql<WebhookRow>`
    update webhooks
       set enabled = false, disabled_reason = ${disable.reason}, disabled_at = now(), updated_at = now(),
           failing_since = case when ${disable.failing ?? false} then coalesce(failing_since, now())
                                else failing_since end
     where id = ${disable.webhookId} and enabled
    returning *
  `.execute(db);
  if (rows.length === 0) return undefined;
  await writeAudit(db, {
    actor: disable.actor ?? 'system',
    action: 'webhook.disabled',
    objectType: 'webhook',
    objectId: disable.webhookId,
    tenantId: disable.tenantId,
    requestId: disable.requestId ?? null,
    details: { reason: disable.reason, ...disable.details },
  });
  const row = rows[0]!;
  await emitOperationalEvent(db, row.tenant_id, 'hookrelay.webhook.disabled', {
    webhook_id: row.id,
    url: row.url,
    reason: disable.reason,
    disabled_at: (row.disabled_at ?? new Date()).toISOString(),
  });
  return row;
}

/**
 * Enables a disabled webhook as a fresh start (no reason, no failing run) and queues its paused
 * deliveries again. Answers the updated row and how many deliveries it resumed; undefined when
 * it was already enabled. The caller writes the audit row (it knows what else changed).
 */
export async function enableWebhook(
  db: Kysely<Database>,
  webhookId: string,
): Promise<{ row: WebhookRow; resumed: number } | undefined> {
  const { rows } = await sql<WebhookRow>`
    update webhooks
       set enabled = true, disabled_reason = null, disabled_at = null, failing_since = null,
           updated_at = now()
     where id = ${webhookId} and not enabled
    returning *
  `.execute(db);
  if (rows.length === 0) return undefined;
  const row = rows[0]!;
  const resumed = await resumePausedDeliveries(db, webhookId);
  await emitOperationalEvent(db, row.tenant_id, 'hookrelay.webhook.enabled', {
    webhook_id: row.id,
    url: row.url,
    resumed_deliveries: resumed,
  });
  return { row, resumed };
}

/**
 * Queues again every paused delivery of a webhook, continuing each series where it stopped.
 * Call it in the transaction that enables the webhook.
 */
export async function resumePausedDeliveries(db: Kysely<Database>, webhookId: string): Promise<number> {
  const { rows } = await sql<{ id: string; attempt_count: number; tenant_id: string }>`
    update deliveries
       set status = case when attempt_count = 0 then 'pending' else 'failed' end,
           next_attempt_at = case when attempt_count = 0 then null else now() end,
           updated_at = now()
     where webhook_id = ${webhookId} and status = 'paused'
    returning id, attempt_count, tenant_id
  `.execute(db);
  await enqueueDeliveries(
    db,
    rows.map((row) => ({ deliveryId: row.id, attempt: row.attempt_count + 1, tenantId: row.tenant_id })),
  );
  return rows.length;
}

/**
 * The UPDATE that records webhooks' health after a batch of attempts, for a CTE of the statement
 * that records the attempts: `failing` true starts a failing run (when none is open), false ends
 * it. Give the rows in webhook id order, so two such statements cannot deadlock.
 */
export function webhookHealthUpdate(
  rows: readonly { webhook_id: string; failing: boolean }[],
): RawBuilder<unknown> {
  return sql`
    update webhooks w
       set failing_since = case when h.failing then now() end
      from json_to_recordset(${JSON.stringify(rows)}::json) as h(webhook_id uuid, failing boolean)
     where w.id = h.webhook_id and h.failing = (w.failing_since is null)
  `;
}

/** Enabled webhooks failing continuously since before `olderThanMs` ago, oldest first, row-locked. */
export async function lockWebhooksFailingFor(
  db: Kysely<Database>,
  olderThanMs: number,
  limit: number,
): Promise<{ id: string; tenant_id: string; failing_since: Date }[]> {
  const { rows } = await sql<{ id: string; tenant_id: string; failing_since: Date }>`
    select id, tenant_id, failing_since
      from webhooks
     where enabled and failing_since < now() - ${olderThanMs} * interval '1 millisecond'
     order by failing_since
     limit ${limit}
       for update skip locked
  `.execute(db);
  return rows;
}

/** What a retry, resend or recovery of a disabled webhook's delivery answers (409). */
export const webhookDisabled = (): AppError =>
  new AppError('conflict', 'The webhook is disabled; enable it (PATCH enabled: true) and retry.');
