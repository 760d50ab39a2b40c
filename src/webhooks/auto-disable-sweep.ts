/**
 * Automatic disable of a webhook that has failed continuously for WEBHOOK_AUTO_DISABLE_AFTER
 * (default 5 days, as Svix does): `failing_since` (set by the first failed attempt, cleared by
 * any success) older than that. Its deliveries then wait as `paused` when their jobs come up,
 * and re-enabling it (PATCH enabled: true) sends them again.
 *
 * Every worker process sweeps once per WEBHOOK_AUTO_DISABLE_SWEEP_MS. Several processes
 * sweeping at once is harmless: each webhook is taken by one transaction (`skip locked`) and
 * disableWebhook re-checks `enabled`, so it is disabled, and audited, once.
 */
import type { Db } from '../db/database.js';
import { startPeriodicSweep, type PeriodicSweep } from '../db/periodic-sweep.js';
import type { Logger } from '../observability/logger.js';
import { disableWebhook, failingReason, lockWebhooksFailingFor } from './webhook-state.js';

/** Webhooks disabled per transaction; a sweep runs batches until none is left. */
const SWEEP_BATCH_SIZE = 500;

export interface DisabledWebhook {
  id: string;
  tenant_id: string;
  failing_since: Date;
  disabled_reason: string;
}

/** One batch: disables up to `SWEEP_BATCH_SIZE` webhooks failing for longer than `failingForMs`. */
async function disableBatch(db: Db, failingForMs: number): Promise<DisabledWebhook[]> {
  return db.transaction().execute(async (trx) => {
    const disabled: DisabledWebhook[] = [];
    for (const webhook of await lockWebhooksFailingFor(trx, failingForMs, SWEEP_BATCH_SIZE)) {
      const reason = failingReason(webhook.failing_since);
      const row = await disableWebhook(trx, {
        webhookId: webhook.id,
        tenantId: webhook.tenant_id,
        reason,
        details: { failing_since: webhook.failing_since.toISOString() },
      });
      if (row) disabled.push({ ...webhook, disabled_reason: reason });
    }
    return disabled;
  });
}

/** Disables every webhook failing for longer than `failingForMs`; returns them. */
export async function disableFailingWebhooks(db: Db, failingForMs: number): Promise<DisabledWebhook[]> {
  const disabled: DisabledWebhook[] = [];
  for (;;) {
    const batch = await disableBatch(db, failingForMs);
    disabled.push(...batch);
    if (batch.length < SWEEP_BATCH_SIZE) return disabled;
  }
}

/** sweep() runs one now (also what the timer does) and resolves with what it disabled. */
export type AutoDisableSweep = PeriodicSweep<DisabledWebhook[]>;

export function startAutoDisableSweep(deps: {
  db: Db;
  logger: Logger;
  failingForMs: number;
  everyMs: number;
}): AutoDisableSweep {
  return startPeriodicSweep({
    name: 'auto-disable sweep',
    everyMs: deps.everyMs,
    logger: deps.logger,
    run: async () => {
      const disabled = await disableFailingWebhooks(deps.db, deps.failingForMs);
      for (const webhook of disabled) {
        deps.logger.warn('webhook disabled: failing continuously', {
          webhook_id: webhook.id,
          tenant_id: webhook.tenant_id,
          failing_since: webhook.failing_since.toISOString(),
        });
      }
      return disabled;
    },
  });
}
