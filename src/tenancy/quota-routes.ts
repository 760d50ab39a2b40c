/**
 * GET /quotas/:tenant_id — limits and current usage; PUT /quotas/:tenant_id (admin) — change
 * limits, audited. The `quotas` table stays the single source of truth: nothing is cached.
 */
import Router from '@koa/router';
import type { RouteDeps } from '../http/deps.js';
import { actingTenant, requireAdmin } from './caller.js';
import { principalOf, requestIdOf } from '../http/request-context.js';
import { bodyValidator } from '../http/validation.js';
import { actorOf } from '../audit/audit-repository.js';
import { notFound } from '../errors.js';
import { concurrentDeliveries } from './concurrency-cap.js';
import { eventsInWindow } from './event-rate-limit.js';
import { dlqCount, findQuota, updateQuota } from './quota-repository.js';
import { quotaChangeSchema, type QuotaChange } from './quota-schemas.js';
import { ensureTenant } from './tenant-repository.js';

const validateQuotaChange = bodyValidator<QuotaChange>(quotaChangeSchema);

export function quotaRoutes(deps: RouteDeps): Router {
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
