import { actingTenant, type Principal } from './auth.js';

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
