/** POST /tenants/:tenant_id/revoke-tokens (admin): a leaked token stops working everywhere. */
import Router from '@koa/router';
import type { RouteDeps } from '../http/deps.js';
import { callerOf } from '../http/request-context.js';
import { bodyValidator } from '../http/validation.js';
import { byCaller, writeAudit } from '../audit/audit-repository.js';
import { actingTenant, requireAdmin } from './caller.js';
import { ensureTenant, revokeTenantTokens } from './tenant-repository.js';
import { revokeTokensSchema } from './tenant-schemas.js';
import type { TokenRevocations } from './token-revocations.js';

const validateRevoke = bodyValidator<Record<string, never>>(revokeTokensSchema);

export function tenantRoutes(deps: RouteDeps & { tokenRevocations?: TokenRevocations }): Router {
  const router = new Router();

  router.post('/tenants/:tenant_id/revoke-tokens', async (ctx) => {
    const caller = callerOf(ctx);
    requireAdmin(caller.principal);
    const tenantId = actingTenant(caller.principal, ctx.params.tenant_id);
    validateRevoke(ctx.request.body ?? {});
    // Its tokens may exist before it has ever called: revoking them makes the tenant.
    await ensureTenant(deps.db, tenantId);
    const validAfter = await deps.db.transaction().execute(async (trx) => {
      const at = await revokeTenantTokens(trx, tenantId);
      await writeAudit(
        trx,
        byCaller(caller, {
          action: 'tenant.tokens_revoked',
          objectType: 'tenant',
          objectId: tenantId,
          tenantId,
          details: { tokens_valid_after: at.toISOString() },
        }),
      );
      return at;
    });
    deps.tokenRevocations?.note(tenantId, validAfter);
    ctx.body = { tenant_id: tenantId, tokens_valid_after: validAfter.toISOString() };
  });

  return router;
}
