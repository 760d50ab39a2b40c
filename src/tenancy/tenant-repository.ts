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
