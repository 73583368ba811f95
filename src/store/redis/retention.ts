import { bodyNeededByFallback, finishedAt, isFinal } from '../records';
import type { Retention } from '../roles';
import type { JobRecord, JobState } from '../types';
import { BATCH, type RedisCore, type StoredMessage } from './core';
import { parseFallbackState } from './scripts';

const DEFAULT_FALLBACK_RETENTION = 30 * 86_400_000;

/** Retention in Redis: looks only at messages in the finished zset. */
export class RedisRetention implements Retention {
  constructor(private readonly core: RedisCore) {}

  async sweep(now = Date.now()): Promise<number> {
    const { redis, keys } = this.core;
    const ids = await redis.zrange(keys.finished(), '0', '-1');
    let removed = 0;
    for (let i = 0; i < ids.length; i += BATCH) {
      const raws = await redis.mget(ids.slice(i, i + BATCH).map((id) => keys.message(id)));
      for (const [j, raw] of raws.entries()) {
        if (!raw) {
          await redis.zrem(keys.finished(), ids[i + j]!);
          continue;
        }
        const stored = JSON.parse(raw) as StoredMessage;
        if (await this.sweepOne(stored, now)) removed++;
      }
    }
    return removed;
  }

  private async sweepOne(stored: StoredMessage, now: number): Promise<boolean> {
    const { redis, keys, options } = this.core;
    if (stored.jobIds.length > 0) {
      const states = await redis.hmget(keys.jobStates(), ...stored.jobIds);
      if (states.some((s) => !s || !isFinal(s as JobState))) {
        await redis.zrem(keys.finished(), stored.id);
        return false;
      }
    }
    const jobs = await redis.mget(stored.jobIds.map((id) => keys.job(id)));
    const record = { ...stored, jobs: jobs.filter((j): j is string => j !== null).map((j) => JSON.parse(j) as JobRecord) };
    const itemIds = await redis.smembers(keys.messageFallback(stored.id));
    if (itemIds.length > 0) {
      const states = (await redis.hmget(keys.fallbackStates(), ...itemIds)).map((s) => (s ? parseFallbackState(s).state : 'ready'));
      if (bodyNeededByFallback(states, finishedAt(record), now, options.fallbackRetention ?? DEFAULT_FALLBACK_RETENTION)) return false;
    }
    if (!stored.bodyRemoved) {
      stored.bodyRemoved = true;
      await this.core.checked(redis.multi().del(keys.body(stored.id)).set(keys.message(stored.id), JSON.stringify(stored)));
    }
    if (now - finishedAt(record) < options.keepFinished) return false;
    await this.core.removeMessage(stored);
    return true;
  }
}
