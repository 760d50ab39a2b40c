/**
 * Fair use of one process's delivery slots (NUM_WORKERS). A slow tenant — endpoints that take
 * seconds, or time out — would otherwise fill every slot and make everyone else wait, whatever
 * the claim order. Rule: no tenant holds more than `total - reserve` of the slots, so at least
 * `reserve` are always there for other tenants.
 */
export interface LocalSlots {
  /** Takes a slot for the tenant: its release function, or undefined when the tenant has its share. */
  tryTake(tenantId: string): (() => void) | undefined;
  /** How long the tenant's longest-running delivery here has been running (0 when none). */
  busyForMs(tenantId: string): number;
  /** Slots in use, per tenant (for tests and logs). */
  inUse(): ReadonlyMap<string, number>;
}

/** Slots no single tenant may take: three in ten, at least one (none when there is only one). */
export const reserveFor = (total: number): number =>
  total <= 1 ? 0 : Math.max(1, Math.floor((total * 3) / 10));

export function createLocalSlots(total: number, now: () => number = Date.now): LocalSlots {
  const maxShare = total - reserveFor(total);
  /** Start times of each tenant's running deliveries. */
  const running = new Map<string, Set<{ startedAt: number }>>();
  let used = 0;
  return {
    tryTake(tenantId) {
      const mine = running.get(tenantId);
      if (used >= total || (mine?.size ?? 0) >= maxShare) return undefined;
      const entry = { startedAt: now() };
      const set = mine ?? new Set();
      set.add(entry);
      running.set(tenantId, set);
      used++;
      let released = false;
      return () => {
        if (released) return;
        released = true;
        set.delete(entry);
        if (set.size === 0) running.delete(tenantId);
        used--;
      };
    },
    busyForMs(tenantId) {
      let oldest = Infinity;
      for (const entry of running.get(tenantId) ?? []) oldest = Math.min(oldest, entry.startedAt);
      return oldest === Infinity ? 0 : now() - oldest;
    },
    inUse: () => new Map([...running].map(([tenant, set]) => [tenant, set.size])),
  };
}
