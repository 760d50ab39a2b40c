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
import { quotaWithUsage, updateQuota } from './quota-repository.js';
import { quotaChangeSchema, type QuotaChange } from './quota-schemas.js';
import { ensureTenant } from './tenant-repository.js';

const validateQuotaChange = bodyValidator<QuotaChange>(quotaChangeSchema);

export function quotaRoutes(deps: RouteDeps): Router {
  const router = new Router();

  router.get('/quotas/:tenant_id', async (ctx) => {
    const principal = principalOf(ctx);
    const tenantId = actingTenant(principal, ctx.params.tenant_id);
    if (tenantId === principal.tenantId) await ensureTenant(deps.db, tenantId);
    const quota = await quotaWithUsage(deps.db, tenantId);
    if (!quota) throw notFound('Tenant');
    ctx.body = {
      tenant_id: tenantId,
      limits: quota.limits,
      current_usage: quota.usage,
      dlq_full: quota.usage.dlq_count >= quota.limits.max_dlq_size,
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
