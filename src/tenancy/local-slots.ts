/**
 * Fair use of one process's delivery slots (NUM_WORKERS). A slow tenant — endpoints that take
 * seconds, or time out — would otherwise fill every slot and make everyone else wait, whatever
 * the claim order. Rule: a slow tenant holds no more than `total - reserve` of the slots, so at
 * least `reserve` are there for other tenants; while it holds that share its jobs are left in
 * the queue (`blockedTenants`). A tenant is slow while its oldest delivery here has run longer
 * than `slowAfterMs`, and after one of its deliveries here took that long, until a fast one ends
 * (or a minute passes without any): a slow tenant whose deliveries all ended at once would
 * otherwise look fast again, its new ones all being young.
 *
 * A fast tenant may use all slots but one, and is not left in the queue for it: a job of its that
 * finds it at that share waits up to `FAST_SHARE_WAIT_MS` (deliver-webhook) for one of its
 * deliveries to end (`waitToTake`) — milliseconds for a fast tenant — and only then goes back to
 * the queue. Leaving it in the queue instead would make every idle worker's fetch read past all
 * of its due jobs, again and again, in the common case of one tenant with a backlog. A fast
 * tenant that turns slow all at once keeps the slots it holds until those requests end (its
 * timeout at most); meanwhile the last slot goes to others' jobs between its jobs' short waits,
 * and once it counts as slow the narrower share applies.
 */
export interface LocalSlots {
  /** Takes a slot for the tenant: its release function, or undefined when the tenant has its share. */
  tryTake(tenantId: string): (() => void) | undefined;
  /**
   * For a fast tenant at its share: waits up to `maxMs` for one of its deliveries here to end and
   * takes that slot. Undefined at once for a slow or held-off tenant, or when time runs out.
   */
  waitToTake(tenantId: string, maxMs: number): Promise<(() => void) | undefined>;
  /** How long the tenant's longest-running delivery here has been running (0 when none). */
  busyForMs(tenantId: string): number;
  /**
   * Tenants whose jobs this process should not take for now: slow ones holding their whole
   * share, and those held off (`holdOff`). Empty most of the time. `fetching`: jobs being
   * fetched right now, not yet started; each may turn out to be any tenant's, so each counts
   * against every slow tenant's share (a fetched job then finds its slot instead of going back
   * to the queue).
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

/** How long a tenant whose last delivery here was slow counts as slow without news. */
const SLOW_MEMORY_MS = 60_000;
/** Most tenants remembered as slow (the longest-ago are forgotten first). */
const SLOW_MEMORY_TENANTS = 10_000;

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
  /**
   * Tenants whose last delivery to end here ran longer than `slowAfterMs`, and when it ended:
   * slow until a fast one ends, or `SLOW_MEMORY_MS` without any. (Without it, a slow tenant
   * whose deliveries all ended at once would look fast again, all its new ones being young.)
   */
  const endedSlow = new Map<string, number>();
  /** Jobs waiting for a slot of their (fast) tenant, per tenant, first come first served. */
  const waiting = new Map<string, (() => void)[]>();
  let used = 0;

  const oldestStart = (set: Set<{ startedAt: number }> | undefined): number | undefined => {
    // Sets keep insertion order and entries are added with the time of adding: the first is oldest.
    for (const entry of set ?? []) return entry.startedAt;
    return undefined;
  };
  const isSlow = (tenantId: string, set: Set<{ startedAt: number }> | undefined, at: number): boolean => {
    const oldest = oldestStart(set);
    if (oldest !== undefined && at - oldest > slowAfterMs) return true;
    const endedAt = endedSlow.get(tenantId);
    return endedAt !== undefined && at - endedAt < SLOW_MEMORY_MS;
  };
  const rememberEnd = (tenantId: string, startedAt: number, at: number): void => {
    endedSlow.delete(tenantId);
    if (at - startedAt <= slowAfterMs) return;
    endedSlow.set(tenantId, at);
    // Oldest first (insertion order): forget the longest-ago beyond the bound.
    for (const tenant of endedSlow.keys()) {
      if (endedSlow.size <= SLOW_MEMORY_TENANTS) break;
      endedSlow.delete(tenant);
    }
  };
  const atSlowShare = (
    tenantId: string,
    set: Set<{ startedAt: number }> | undefined,
    at: number,
    fetching = 0,
  ): boolean => (set?.size ?? 0) + fetching >= slowShare && isSlow(tenantId, set, at);
  const atShare = (tenantId: string, set: Set<{ startedAt: number }> | undefined, at: number): boolean =>
    (set?.size ?? 0) >= fastShare || atSlowShare(tenantId, set, at);
  const isHeldOff = (tenantId: string, at: number): boolean => (heldUntil.get(tenantId) ?? 0) > at;

  const tryTake = (tenantId: string): (() => void) | undefined => {
    const mine = running.get(tenantId);
    const at = now();
    if (used >= total || atShare(tenantId, mine, at)) return undefined;
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
      rememberEnd(tenantId, entry.startedAt, now());
      heldUntil.delete(tenantId);
      used--;
      // The first job waiting for this tenant's slot tries again (it leaves the queue itself).
      waiting.get(tenantId)?.[0]?.();
    };
  };

  return {
    tryTake,
    async waitToTake(tenantId, maxMs) {
      const deadline = now() + maxMs;
      for (;;) {
        const at = now();
        if (isSlow(tenantId, running.get(tenantId), at) || isHeldOff(tenantId, at) || at >= deadline) {
          return undefined;
        }
        const release = tryTake(tenantId);
        if (release) return release;
        // Until one of its deliveries ends here, or time is up (then it is slow, or gives up).
        await new Promise<void>((resolve) => {
          const queue = waiting.get(tenantId) ?? [];
          waiting.set(tenantId, queue);
          const wake = () => {
            clearTimeout(timer);
            const i = queue.indexOf(wake);
            if (i >= 0) queue.splice(i, 1);
            if (queue.length === 0 && waiting.get(tenantId) === queue) waiting.delete(tenantId);
            resolve();
          };
          const timer = setTimeout(wake, Math.max(1, Math.min(deadline, at + slowAfterMs + 1) - at));
          queue.push(wake);
        });
      }
    },
    busyForMs(tenantId) {
      const oldest = oldestStart(running.get(tenantId));
      return oldest === undefined ? 0 : now() - oldest;
    },
    blockedTenants(fetching = 0) {
      const at = now();
      const blocked: string[] = [];
      for (const [tenant, set] of running) if (atSlowShare(tenant, set, at, fetching)) blocked.push(tenant);
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
