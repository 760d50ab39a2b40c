/**
 * Fair use of one process's delivery slots (NUM_WORKERS). A slow tenant — endpoints that take
 * seconds, or time out — would otherwise fill every slot and make everyone else wait, whatever
 * the claim order. Rule: a tenant whose deliveries here are slow (the oldest has been running
 * longer than `slowAfterMs`) holds no more than `total - reserve` of the slots, so at least
 * `reserve` are there for other tenants. A tenant whose deliveries are fast may use all slots
 * but one: each frees within milliseconds and the next one goes to whoever is first in the
 * fair order (see delivery/enqueue), so a wider cap would only leave slots idle. A fast tenant
 * that turns slow all at once keeps the slots it holds until those requests end (its timeout
 * at most), others meanwhile having the one slot left; from then on the narrower cap applies.
 */
export interface LocalSlots {
  /** Takes a slot for the tenant: its release function, or undefined when the tenant has its share. */
  tryTake(tenantId: string): (() => void) | undefined;
  /** How long the tenant's longest-running delivery here has been running (0 when none). */
  busyForMs(tenantId: string): number;
  /**
   * Tenants whose jobs this process should not take for now: those holding their whole share,
   * and those held off (`holdOff`). Empty most of the time. `fetching`: jobs being fetched right
   * now, not yet started; each may turn out to be any tenant's, so each counts against every
   * tenant's share (a fetched job then always finds its slot, instead of going back to the queue).
   */
  blockedTenants(fetching?: number): string[];
  /**
   * Keeps the tenant's jobs away for `ms` (it is at a limit shared with other processes), or
   * until one of its deliveries here ends, whichever is first.
   */
  holdOff(tenantId: string, ms: number): void;
  /** Slots in use, per tenant (for tests and logs). */
  inUse(): ReadonlyMap<string, number>;
}

export interface LocalSlotsOptions {
  /** A tenant whose oldest running delivery here is older than this is slow (default 250 ms). */
  slowAfterMs?: number;
  now?: () => number;
}

/** Slots a slow tenant may not take: three in ten, at least one (none when there is only one). */
export const reserveFor = (total: number): number =>
  total <= 1 ? 0 : Math.max(1, Math.floor((total * 3) / 10));

export function createLocalSlots(total: number, options: LocalSlotsOptions = {}): LocalSlots {
  const slowAfterMs = options.slowAfterMs ?? 250;
  const now = options.now ?? Date.now;
  /** The most a slow tenant holds, and the most any tenant holds. */
  const slowShare = total - reserveFor(total);
  const fastShare = total <= 1 ? total : total - 1;
  /** Start times of each tenant's running deliveries, oldest first. */
  const running = new Map<string, Set<{ startedAt: number }>>();
  /** Held-off tenants and until when. */
  const heldUntil = new Map<string, number>();
  let used = 0;

  const oldestStart = (set: Set<{ startedAt: number }> | undefined): number | undefined => {
    // Sets keep insertion order and entries are added with the time of adding: the first is oldest.
    for (const entry of set ?? []) return entry.startedAt;
    return undefined;
  };
  const atShare = (set: Set<{ startedAt: number }> | undefined, at: number, fetching = 0): boolean => {
    const size = (set?.size ?? 0) + fetching;
    if (size >= fastShare) return true;
    if (size < slowShare) return false;
    const oldest = oldestStart(set);
    return oldest !== undefined && at - oldest > slowAfterMs;
  };

  return {
    tryTake(tenantId) {
      const mine = running.get(tenantId);
      const at = now();
      if (used >= total || atShare(mine, at)) return undefined;
      const entry = { startedAt: at };
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
        heldUntil.delete(tenantId);
        used--;
      };
    },
    busyForMs(tenantId) {
      const oldest = oldestStart(running.get(tenantId));
      return oldest === undefined ? 0 : now() - oldest;
    },
    blockedTenants(fetching = 0) {
      const at = now();
      const blocked: string[] = [];
      for (const [tenant, set] of running) if (atShare(set, at, fetching)) blocked.push(tenant);
      for (const [tenant, until] of heldUntil) {
        if (until <= at) heldUntil.delete(tenant);
        else if (!blocked.includes(tenant)) blocked.push(tenant);
      }
      return blocked;
    },
    holdOff(tenantId, ms) {
      heldUntil.set(tenantId, Math.max(heldUntil.get(tenantId) ?? 0, now() + ms));
    },
    inUse: () => new Map([...running].map(([tenant, set]) => [tenant, set.size])),
  };
}
