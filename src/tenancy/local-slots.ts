/**
 * Fair use of one process's delivery slots (NUM_WORKERS). A slow tenant — endpoints that take
 * seconds, or time out — would otherwise fill every slot and make everyone else wait, whatever
 * the claim order. Rule: a tenant that already has deliveries running here may take another
 * slot only while more than `reserve` slots stay free; a tenant with none running may always
 * take a free one. So a few slots are always left for tenants that are not yet being served.
 */
export interface LocalSlots {
  /** Takes a slot for the tenant, or answers false: the caller should queue the job again shortly. */
  tryTake(tenantId: string): boolean;
  release(tenantId: string): void;
  /** Slots in use, per tenant (for tests and logs). */
  inUse(): ReadonlyMap<string, number>;
}

/** Slots kept for tenants with nothing running: a fifth of them, at least one (none when there is only one). */
export const reserveFor = (total: number): number => (total <= 1 ? 0 : Math.max(1, Math.floor(total / 5)));

export function createLocalSlots(total: number): LocalSlots {
  const reserve = reserveFor(total);
  const byTenant = new Map<string, number>();
  let used = 0;
  return {
    tryTake(tenantId) {
      const mine = byTenant.get(tenantId) ?? 0;
      const free = total - used;
      if (free <= 0 || (mine > 0 && free <= reserve)) return false;
      byTenant.set(tenantId, mine + 1);
      used++;
      return true;
    },
    release(tenantId) {
      const mine = byTenant.get(tenantId) ?? 0;
      if (mine <= 1) byTenant.delete(tenantId);
      else byTenant.set(tenantId, mine - 1);
      used = Math.max(0, used - 1);
    },
    inUse: () => byTenant,
  };
}
