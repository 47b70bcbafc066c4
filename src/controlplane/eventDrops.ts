/**
 * Kernel events the datapath could not report: lost because the ring was full (`events_drops`) or
 * held back by an agent's token bucket (`ratelimit_drops`, per cgroup). The datapath only counts
 * them; the control plane turns each increase into one audit line, so a flood that tries to bury
 * the event stream leaves a trace in it, and keeps the totals for `firewall status`. Pure.
 */

export interface DropCounters {
  /** Events lost because the ring was full, since the datapath was loaded. */
  readonly ring: number;
  /** Events the per-agent rate limit held back, by cgroup id. */
  readonly rateLimited: ReadonlyMap<string, number>;
}

export const NO_DROPS: DropCounters = { ring: 0, rateLimited: new Map() };

export interface DropNews {
  readonly ringLost: number;
  readonly rateLimited: readonly { readonly cgroupId: string; readonly dropped: number }[];
}

/** Reads `bpfman stats` output; anything unexpected counts as nothing (never as a negative). */
export function dropCountersOf(stats: Record<string, unknown>): DropCounters {
  const count = (v: unknown): number => (typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : 0);
  const rateLimited = new Map<string, number>();
  const byCgroup = stats.ratelimitDrops;
  if (byCgroup && typeof byCgroup === 'object' && !Array.isArray(byCgroup)) {
    for (const [cgroup, n] of Object.entries(byCgroup)) if (/^\d+$/.test(cgroup) && count(n) > 0) rateLimited.set(cgroup, count(n));
  }
  return { ring: count(stats.eventsDrops), rateLimited };
}

/** What grew since `before` (a counter that went down was reset: a reload; it counts from zero). */
export function dropNews(before: DropCounters, now: DropCounters): DropNews {
  const grown = (was: number, is: number): number => (is >= was ? is - was : is);
  return {
    ringLost: grown(before.ring, now.ring),
    rateLimited: [...now.rateLimited]
      .map(([cgroupId, n]) => ({ cgroupId, dropped: grown(before.rateLimited.get(cgroupId) ?? 0, n) }))
      .filter((d) => d.dropped > 0)
      .sort((a, b) => Number(a.cgroupId) - Number(b.cgroupId)),
  };
}

export const totalRateLimited = (c: DropCounters): number => [...c.rateLimited.values()].reduce((a, b) => a + b, 0);
