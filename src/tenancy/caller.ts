/**
 * Who is asking, and which tenant's objects that lets them reach. A tenant token acts for its
 * own tenant only; an admin token for any. Routes build a `Caller` from the request; services
 * take it and never look at HTTP.
 */
import { AppError } from '../errors.js';

export type Role = 'tenant' | 'admin';

export interface Principal {
  tenantId: string;
  role: Role;
}

/** Who is asking, and through which request (for the audit log). */
export interface Caller {
  principal: Principal;
  requestId: string;
  /** Where the request came from when not the JSON API: the tenant portal's pages. */
  via?: 'portal';
}

/** A tenant id, as JSON schemas write it. */
export const TENANT_ID_PATTERN = '^[A-Za-z0-9_.:-]{1,128}$';
const TENANT_ID = new RegExp(TENANT_ID_PATTERN);

export const isTenantId = (value: unknown): value is string =>
  typeof value === 'string' && TENANT_ID.test(value);

/**
 * The tenant a request acts for: the token's own, or for an admin the one it names. A tenant
 * token naming another tenant gets 403.
 */
export function actingTenant(principal: Principal, requested: string | undefined | null): string {
  if (requested === undefined || requested === null || requested === principal.tenantId)
    return principal.tenantId;
  if (principal.role !== 'admin')
    throw new AppError('forbidden', 'This token may not act for another tenant.');
  if (!isTenantId(requested)) {
    throw new AppError('invalid_request', 'tenant_id is not a valid tenant id.', {
      details: [{ field: '/tenant_id', message: `must match ${TENANT_ID_PATTERN}` }],
    });
  }
  return requested;
}

/** For list endpoints: an admin without tenant_id sees every tenant (undefined). */
export function tenantFilter(principal: Principal, requested: string | undefined): string | undefined {
  if (principal.role === 'admin')
    return requested === undefined ? undefined : actingTenant(principal, requested);
  return actingTenant(principal, requested);
}

/**
 * The tenant whose objects a caller may read or change by id: an admin that names no tenant
 * may reach any (undefined); otherwise the tenant `actingTenant` allows (403 for a tenant
 * token naming another). An object outside the scope is then a 404.
 */
export function objectScope(principal: Principal, requested: string | undefined): string | undefined {
  return principal.role === 'admin' && requested === undefined
    ? undefined
    : actingTenant(principal, requested);
}

export function requireAdmin(principal: Principal): void {
  if (principal.role !== 'admin') throw new AppError('forbidden', 'This endpoint needs an admin token.');
}

/**
 * Whether a token (or portal session) issued at `issuedAtSeconds` (its `iat`) is refused by a
 * revocation at `validAfterMs`. `iat` has whole seconds, so one issued in the second of the
 * revocation is refused too.
 */
export function isRevoked(issuedAtSeconds: number, validAfterMs: number | undefined): boolean {
  return validAfterMs !== undefined && issuedAtSeconds < Math.floor(validAfterMs / 1000) + 1;
}
