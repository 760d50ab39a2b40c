/**
 * One-time sign-in links: created for a tenant (POST /portal/sessions, the development banner),
 * consumed once within ten minutes. Only the token's SHA-256 is stored.
 */
import { createHash, randomBytes } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import { ensureTenant } from '../tenancy/tenant-repository.js';

export const LINK_TTL_MS = 10 * 60 * 1000;
/** Where a link's token goes; the path the portal serves sign-in on. */
export const SIGN_IN_PATH = '/portal/sign-in/';

const hashOf = (token: string): string => createHash('sha256').update(token).digest('hex');

export interface PortalLink {
  /** Path and token, to put after the service's origin. */
  path: string;
  expiresAt: Date;
}

export async function createPortalLink(db: Kysely<Database>, tenantId: string): Promise<PortalLink> {
  await ensureTenant(db, tenantId);
  const token = randomBytes(32).toString('base64url');
  const expiresAt = new Date(Date.now() + LINK_TTL_MS);
  await db
    .insertInto('portal_links')
    .values({ token_hash: hashOf(token), tenant_id: tenantId, expires_at: expiresAt })
    .execute();
  return { path: SIGN_IN_PATH + token, expiresAt };
}

/**
 * The link's tenant, marking it used; undefined for an unknown, used or expired link. One
 * statement, so two openings at once cannot both succeed.
 */
export async function consumePortalLink(db: Kysely<Database>, token: string): Promise<string | undefined> {
  if (!/^[A-Za-z0-9_-]{20,100}$/.test(token)) return undefined;
  const row = await db
    .updateTable('portal_links')
    .set({ used_at: sql`now()` })
    .where('token_hash', '=', hashOf(token))
    .where('used_at', 'is', null)
    .where('expires_at', '>', sql<Date>`now()`)
    .returning('tenant_id')
    .executeTakeFirst();
  return row?.tenant_id;
}
