/**
 * Writes to `audit_log`. Callers pass their transaction, so the audit row commits (or rolls
 * back) with the change it describes.
 */
import { sql, type Kysely } from 'kysely';
import type { Caller, Principal } from '../tenancy/caller.js';
import type { Database } from '../db/database.js';
import { pageWithTotal } from '../db/page.js';

export interface AuditEntry {
  /** `<tenant_id>:<role>` of the token (see `actorOf`), or `system` for automatic actions. */
  actor: string;
  /** `<object type>.<past participle>`, e.g. `webhook.created`, `dlq.retried`. */
  action: string;
  objectType: string;
  objectId: string | null;
  tenantId: string | null;
  requestId: string | null;
  /** What changed; never a secret, token, signature or payload. */
  details?: Record<string, unknown>;
}

export const actorOf = (principal: Principal): string => `${principal.tenantId}:${principal.role}`;

/**
 * An entry for what a caller did: the actor and request id come from the caller, and a change
 * made through the portal says so in its details (`"via": "portal"`).
 */
export const byCaller = (caller: Caller, entry: Omit<AuditEntry, 'actor' | 'requestId'>): AuditEntry => ({
  actor: actorOf(caller.principal),
  requestId: caller.requestId,
  ...entry,
  ...(caller.via !== undefined ? { details: { ...entry.details, via: caller.via } } : {}),
});

export async function writeAudit(db: Kysely<Database>, entry: AuditEntry): Promise<void> {
  await sql`
    insert into audit_log (actor, action, object_type, object_id, tenant_id, request_id, details)
    values (
      ${entry.actor}, ${entry.action}, ${entry.objectType}, ${entry.objectId},
      ${entry.tenantId}, ${entry.requestId}, ${JSON.stringify(entry.details ?? {})}::jsonb
    )
  `.execute(db);
}

export interface AuditRow {
  id: string;
  at: Date;
  actor: string;
  action: string;
  object_type: string;
  object_id: string | null;
  tenant_id: string | null;
  request_id: string | null;
  details: Record<string, unknown>;
}

export interface AuditFilter {
  /** Undefined: every tenant's rows, and those of no tenant (an admin). */
  tenantId: string | undefined;
  action: string | undefined;
  objectType: string | undefined;
  objectId: string | undefined;
  limit: number;
  offset: number;
}

/** Newest first; `total` counts every match. */
export async function listAudit(
  db: Kysely<Database>,
  filter: AuditFilter,
): Promise<{ rows: AuditRow[]; total: number }> {
  let base = db.selectFrom('audit_log');
  if (filter.tenantId !== undefined) base = base.where('tenant_id', '=', filter.tenantId);
  if (filter.action !== undefined) base = base.where('action', '=', filter.action);
  if (filter.objectType !== undefined) base = base.where('object_type', '=', filter.objectType);
  if (filter.objectId !== undefined) base = base.where('object_id', '=', filter.objectId);
  return pageWithTotal(
    base,
    (q) =>
      q
        .select([
          'id',
          'at',
          'actor',
          'action',
          'object_type',
          'object_id',
          'tenant_id',
          'request_id',
          'details',
        ])
        .orderBy('at', 'desc')
        .orderBy('id', 'desc'),
    filter,
  );
}
