import { bodyNeededByFallback, finishedAt, isFinal } from '../records';
import type { Retention } from '../roles';
import type { JobRecord, JobState } from '../types';
import { BATCH, checkStored, checkStoredJob, type RedisCore, type StoredMessage } from './core';
import { parseFallbackState } from './scripts';

const DEFAULT_FALLBACK_RETENTION = 30 * 86_400_000;
const DEFAULT_QUARANTINE_RETENTION = 30 * 86_400_000;

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
        const checked = checkStored(raw, ids[i + j]);
        if (!checked.ok) {
          await this.core.quarantine(ids[i + j]!, 'message', checked.code, checked.reason);
          continue;
        }
        if (await this.sweepOne(checked.value, now)) removed++;
      }
    }
    // Quarantined entries may hold partial bodies: they are not kept for ever.
    const purged = await this.core.purgeQuarantined(now - (this.core.options.quarantineRetention ?? DEFAULT_QUARANTINE_RETENTION));
    if (purged.length > 0) this.core.options.logger.info({ event: 'quarantine-purged', count: purged.length, ids: purged.map((e) => e.id) }, 'quarantined entries past their retention deleted');
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
    const jobs: JobRecord[] = [];
    for (const [i, raw] of (await redis.mget(stored.jobIds.map((id) => keys.job(id)))).entries()) {
      if (raw === null) continue;
      const checked = checkStoredJob(raw, stored.jobIds[i]);
      if (!checked.ok) {
        await this.core.quarantine(stored.id, 'job', checked.code, checked.reason, stored.jobIds[i]);
        return false;
      }
      jobs.push(checked.value);
    }
    const record = { ...stored, jobs };
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
