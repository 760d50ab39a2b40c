/**
 * GET /quotas/:tenant_id — limits and current usage; PUT /quotas/:tenant_id (admin) — change
 * limits, audited. The `quotas` table stays the single source of truth: nothing is cached.
 */
import Router from '@koa/router';
import type { ApiDeps } from '../api/deps.js';
import { actingTenant, requireAdmin } from '../api/auth.js';
import { principalOf, requestIdOf } from '../api/request-context.js';
import { bodyValidator } from '../api/validation.js';
import { actorOf } from '../audit/audit-repository.js';
import { notFound } from '../errors.js';
import { concurrentDeliveries } from './concurrency-cap.js';
import { eventsInWindow } from './event-rate-limit.js';
import { dlqCount, findQuota, updateQuota, type QuotaLimits } from './quota-repository.js';
import { ensureTenant } from './tenant-repository.js';

const limit = { type: 'integer', minimum: 0, maximum: 1_000_000 } as const;
const validateQuotaChange = bodyValidator<Partial<QuotaLimits>>({
  type: 'object',
  properties: { max_events_per_sec: limit, max_concurrent_deliveries: limit, max_dlq_size: limit },
  additionalProperties: false,
  minProperties: 1,
});

export function quotaRoutes(deps: ApiDeps): Router {
  const router = new Router();

  router.get('/quotas/:tenant_id', async (ctx) => {
    const principal = principalOf(ctx);
    const tenantId = actingTenant(principal, ctx.params.tenant_id);
    if (tenantId === principal.tenantId) await ensureTenant(deps.db, tenantId);
    const limits = await findQuota(deps.db, tenantId);
    if (!limits) throw notFound('Tenant');
    const [eventsSent, inFlight, dlq] = await Promise.all([
      eventsInWindow(deps.db, tenantId),
      concurrentDeliveries(deps.db, tenantId),
      dlqCount(deps.db, tenantId),
    ]);
    ctx.body = {
      tenant_id: tenantId,
      limits,
      current_usage: { events_sent: eventsSent, concurrent_deliveries: inFlight, dlq_count: dlq },
      dlq_full: dlq >= limits.max_dlq_size,
    };
  });

  router.put('/quotas/:tenant_id', async (ctx) => {
    const principal = principalOf(ctx);
    requireAdmin(principal);
    const tenantId = actingTenant(principal, ctx.params.tenant_id);
    const changes = validateQuotaChange(ctx.request.body ?? {});
    await ensureTenant(deps.db, tenantId);
    // The quotas_audit trigger (migrations/008) writes the audit row, naming this caller.
    const limits = await deps.db
      .transaction()
      .execute((trx) =>
        updateQuota(trx, tenantId, changes, { actor: actorOf(principal), requestId: requestIdOf(ctx) }),
      );
    ctx.body = { tenant_id: tenantId, limits };
  });

  return router;
}
