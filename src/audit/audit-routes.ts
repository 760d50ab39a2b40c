/** GET /audit-log: who changed what, newest first, tenant-scoped like every list. */
import Router from '@koa/router';
import { tenantFilter } from '../tenancy/caller.js';
import type { RouteDeps } from '../http/deps.js';
import { listAnswer } from '../db/page.js';
import { principalOf } from '../http/request-context.js';
import { queryValidator } from '../http/validation.js';
import { listAudit, type AuditRow } from './audit-repository.js';
import { listAuditQuerySchema, type ListAuditQuery } from './audit-schemas.js';

const validateListQuery = queryValidator<ListAuditQuery>(listAuditQuerySchema);

function toAuditView(row: AuditRow) {
  return {
    id: row.id,
    at: row.at.toISOString(),
    actor: row.actor,
    action: row.action,
    object_type: row.object_type,
    object_id: row.object_id,
    tenant_id: row.tenant_id,
    request_id: row.request_id,
    details: row.details,
  };
}

export function auditRoutes(deps: RouteDeps): Router {
  const router = new Router();

  router.get('/audit-log', async (ctx) => {
    const query = validateListQuery({ ...ctx.query });
    const { rows, total } = await listAudit(deps.db, {
      tenantId: tenantFilter(principalOf(ctx), query.tenant_id),
      action: query.action,
      objectType: query.object_type,
      objectId: query.object_id,
      limit: query.limit,
      offset: query.offset,
    });
    ctx.body = listAnswer(rows.map(toAuditView), total, query);
  });

  return router;
}
