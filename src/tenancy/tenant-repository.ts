import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/database.js';

/** Tenants already made sure of, per database; the service never deletes a tenant. */
const knownTenants = new WeakMap<object, Set<string>>();

/** Creates the tenant and its default quotas on first use. */
export async function ensureTenant(db: Kysely<Database>, tenantId: string): Promise<void> {
  let known = knownTenants.get(db);
  if (!known) knownTenants.set(db, (known = new Set()));
  if (known.has(tenantId)) return;
  await sql`
    with t as (insert into tenants (id) values (${tenantId}) on conflict do nothing)
    insert into quotas (tenant_id) values (${tenantId}) on conflict do nothing
  `.execute(db);
  known.add(tenantId);
}

/** Channel that tells every process of a revocation at once (the periodic re-read is the fallback). */
export const TOKENS_REVOKED_CHANNEL = 'hookrelay_tokens_revoked';

/**
 * Revokes every token of the tenant issued up to now; every process hears of it on commit.
 * Answers the time recorded.
 */
export async function revokeTenantTokens(db: Kysely<Database>, tenantId: string): Promise<Date> {
  const { rows } = await sql<{ tokens_valid_after: Date }>`
    with revoked as (
      update tenants set tokens_valid_after = now() where id = ${tenantId} returning id, tokens_valid_after
    ), notified as (
      select pg_notify(${TOKENS_REVOKED_CHANNEL},
                       json_build_object('tenant_id', id, 'tokens_valid_after', tokens_valid_after)::text)
        from revoked
    )
    select tokens_valid_after from revoked where (select count(*) from notified) >= 0
  `.execute(db);
  return rows[0]!.tokens_valid_after;
}

/** Every tenant with a revocation, and its time. */
export async function tokenRevocationTimes(
  db: Kysely<Database>,
): Promise<{ id: string; tokens_valid_after: Date }[]> {
  const { rows } = await sql<{ id: string; tokens_valid_after: Date }>`
    select id, tokens_valid_after from tenants where tokens_valid_after is not null
  `.execute(db);
  return rows;
}
