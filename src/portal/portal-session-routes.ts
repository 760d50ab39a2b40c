/** POST /portal/sessions: a one-time sign-in link to the portal, for a tenant or admin token. */
import Router from '@koa/router';
import { byCaller, writeAudit } from '../audit/audit-repository.js';
import type { RouteDeps } from '../http/deps.js';
import { callerOf } from '../http/request-context.js';
import { bodyValidator } from '../http/validation.js';
import { actingTenant } from '../tenancy/caller.js';
import { createPortalLink } from './portal-links.js';
import { createPortalSessionSchema, type CreatePortalSessionBody } from './portal-session-schemas.js';

const validateCreate = bodyValidator<CreatePortalSessionBody>(createPortalSessionSchema);

export function portalSessionRoutes(deps: RouteDeps): Router {
  const router = new Router();

  router.post('/portal/sessions', async (ctx) => {
    const caller = callerOf(ctx);
    const body = validateCreate(ctx.request.body ?? {});
    const tenantId = actingTenant(caller.principal, body.tenant_id);
    const link = await createPortalLink(deps.db, tenantId);
    await writeAudit(
      deps.db,
      byCaller(caller, {
        action: 'portal.session_link_created',
        objectType: 'tenant',
        objectId: tenantId,
        tenantId,
        details: { expires_at: link.expiresAt.toISOString() },
      }),
    );
    ctx.status = 201;
    ctx.body = { url: `${ctx.protocol}://${ctx.host}${link.path}`, expires_at: link.expiresAt.toISOString() };
  });

  return router;
}
