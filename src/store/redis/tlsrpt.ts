import { TLSRPT_DAY, type TlsRptCounters, type TlsRptTally } from '../roles';
import type { RedisCore } from './core';

/** Counters outlive the report they feed by this much even if no relay prunes (about two weeks). */
const COUNTER_TTL_SECONDS = 15 * 24 * 3600;

function checkDay(day: string): void {
  if (!TLSRPT_DAY.test(day)) throw new TypeError(`not a TLS-RPT day (YYYY-MM-DD): ${day}`);
}

/**
 * TLS-RPT counters as one hash per (day, domain): HINCRBY in one MULTI with the day's domain set, so relays
 * sharing the Redis add into the same report. Keys expire on their own after ~15 days; prune drops them sooner.
 */
export class RedisTlsRptCounters implements TlsRptCounters {
  constructor(private readonly core: RedisCore) {}

  async tlsRptCount(day: string, domain: string, policy: string, detail: string | null, count = 1): Promise<void> {
    checkDay(day);
    const { redis, keys } = this.core;
    const field = detail === null ? `s\t${policy}` : `f\t${policy}\t${detail}`;
    const counters = keys.tlsRptCounters(day, domain);
    const domains = keys.tlsRptDomains(day);
    await redis.multi().hincrby(counters, field, count).expire(counters, COUNTER_TTL_SECONDS).sadd(domains, domain).expire(domains, COUNTER_TTL_SECONDS).sadd(keys.tlsRptDays(), day).exec();
  }

  async tlsRptDomains(day: string): Promise<string[]> {
    checkDay(day);
    return (await this.core.redis.smembers(this.core.keys.tlsRptDomains(day))).sort();
  }

  async tlsRptRead(domain: string, day: string): Promise<TlsRptTally[]> {
    checkDay(day);
    const fields = await this.core.redis.hgetall(this.core.keys.tlsRptCounters(day, domain));
    const tallies: TlsRptTally[] = [];
    for (const [field, value] of Object.entries(fields)) {
      const count = Number(value);
      const [kind, policy, detail] = field.split('\t');
      if (!Number.isSafeInteger(count) || policy === undefined) continue;
      if (kind === 's') tallies.push({ policy, detail: null, count });
      else if (kind === 'f' && detail !== undefined) tallies.push({ policy, detail, count });
    }
    return tallies;
  }

  async tlsRptPrune(before: string): Promise<number> {
    checkDay(before);
    const { redis, keys } = this.core;
    const days = (await redis.smembers(keys.tlsRptDays())).filter((day) => TLSRPT_DAY.test(day) && day < before);
    for (const day of days) {
      const domains = await redis.smembers(keys.tlsRptDomains(day));
      await redis.del(...domains.map((d) => keys.tlsRptCounters(day, d)), keys.tlsRptDomains(day));
      await redis.srem(keys.tlsRptDays(), day);
    }
    return days.length;
  }
}
