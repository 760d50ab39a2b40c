/**
 * Writes to `audit_log`. Callers pass their transaction, so the audit row commits (or rolls
 * back) with the change it describes.
 */
import { sql, type Kysely } from 'kysely';
import type { Principal } from '../api/auth.js';
import type { Database } from '../db/database.js';

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

export async function writeAudit(db: Kysely<Database>, entry: AuditEntry): Promise<void> {
  await sql`
    insert into audit_log (actor, action, object_type, object_id, tenant_id, request_id, details)
    values (
      ${entry.actor}, ${entry.action}, ${entry.objectType}, ${entry.objectId},
      ${entry.tenantId}, ${entry.requestId}, ${JSON.stringify(entry.details ?? {})}::jsonb
    )
  `.execute(db);
}
