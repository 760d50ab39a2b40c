/**
 * Fair use of one process's delivery slots (NUM_WORKERS). A slow tenant — endpoints that take
 * seconds, or time out — would otherwise fill every slot and make everyone else wait, whatever
 * the claim order. Rule: no tenant holds more than `total - reserve` of the slots, so at least
 * `reserve` are always there for other tenants.
 */
export interface LocalSlots {
  /** Takes a slot for the tenant, or answers false: the caller should queue the job again shortly. */
  tryTake(tenantId: string): boolean;
  release(tenantId: string): void;
  /** Slots in use, per tenant (for tests and logs). */
  inUse(): ReadonlyMap<string, number>;
}

/** Slots no single tenant may take: a fifth of them, at least one (none when there is only one). */
export const reserveFor = (total: number): number => (total <= 1 ? 0 : Math.max(1, Math.floor(total / 5)));

export function createLocalSlots(total: number): LocalSlots {
  const maxShare = total - reserveFor(total);
  const byTenant = new Map<string, number>();
  let used = 0;
  return {
    tryTake(tenantId) {
      const mine = byTenant.get(tenantId) ?? 0;
      if (used >= total || mine >= maxShare) return false;
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
