import type { TlsRptCounters, TlsRptTally } from '../../src/store/types';

/** The store role in memory, for report tests without a backend. */
export function memoryCounters(): TlsRptCounters & { failNext?: Error } {
  const days = new Map<string, Map<string, Map<string, TlsRptTally>>>();
  const counters: TlsRptCounters & { failNext?: Error } = {
    async tlsRptCount(day, domain, policy, detail, count = 1) {
      if (counters.failNext) {
        const err = counters.failNext;
        delete counters.failNext;
        throw err;
      }
      const byDomain = days.get(day) ?? new Map<string, Map<string, TlsRptTally>>();
      days.set(day, byDomain);
      const tallies = byDomain.get(domain) ?? new Map<string, TlsRptTally>();
      byDomain.set(domain, tallies);
      const key = JSON.stringify([policy, detail]);
      const tally = tallies.get(key);
      if (tally) tally.count += count;
      else tallies.set(key, { policy, detail, count });
    },
    async tlsRptDomains(day) {
      return [...(days.get(day)?.keys() ?? [])].sort();
    },
    async tlsRptRead(domain, day) {
      return [...(days.get(day)?.get(domain)?.values() ?? [])].map((t) => ({ ...t }));
    },
    async tlsRptPrune(before) {
      let n = 0;
      for (const day of [...days.keys()]) if (day < before && days.delete(day)) n++;
      return n;
    },
  };
  return counters;
}
