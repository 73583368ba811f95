import { messageIdOfFallback } from '../ids';
import { matchesFallbackFilter, page, reopenRecipient } from '../records';
import type { FallbackStore } from '../roles';
import { handedOver, NotFoundError, type FallbackFilter, type FallbackItem } from '../types';
import { checkJson, fallbackSchema } from '../schema';
import { BATCH, type RedisCore } from './core';
import { parseFallbackState, scriptOutcome } from './scripts';

/** Fallback items in Redis: immutable item JSON plus a small state string per item (fbstates hash). */
export class RedisFallbackStore implements FallbackStore {
  constructor(private readonly core: RedisCore) {}

  async listFallback(filter: FallbackFilter = {}): Promise<FallbackItem[]> {
    const { redis, keys } = this.core;
    const ids = await redis.zrange(keys.fallbackAll(), '0', '-1');
    if (ids.length === 0) return [];
    let selected = ids;
    if (filter.state !== undefined) {
      const states = await redis.hmget(keys.fallbackStates(), ...ids);
      selected = ids.filter((_id, i) => states[i] && parseFallbackState(states[i]).state === filter.state);
    }
    if (filter.domain === undefined && filter.recipient === undefined && filter.since === undefined) return this.loadFallback(page(selected, filter));
    // Recipient and time are in the item's JSON (small: never the message), read in batches.
    const matched: FallbackItem[] = [];
    for (let i = 0; i < selected.length; i += BATCH) {
      for (const item of await this.loadFallback(selected.slice(i, i + BATCH))) if (matchesFallbackFilter(item, filter)) matched.push(item);
    }
    return page(matched, filter);
  }

  async getFallback(id: string): Promise<FallbackItem | undefined> {
    const [item] = await this.loadFallback([id]);
    return item;
  }

  async claimFallback(owner: string, limit: number, leaseMs: number, now = Date.now()): Promise<FallbackItem[]> {
    const { redis, keys } = this.core;
    const ids = await redis.sgClaimFallback(keys.fallbackReady(), keys.fallbackClaims(), keys.fallbackStates(), now, limit, now + leaseMs, owner);
    return this.loadFallback(ids);
  }

  async ackFallback(id: string, owner: string): Promise<void> {
    const { keys } = this.core;
    scriptOutcome(await this.core.confirmed('sgAckFallback', keys.fallbackClaims(), keys.fallbackStates(), id, owner, Date.now()), { itemId: id, owner });
  }

  async releaseFallback(id: string): Promise<void> {
    const item = await this.getFallback(id);
    if (!item) throw new NotFoundError(`fallback item ${id} not found`);
    if (item.state === 'acked') throw handedOver(id);
    // Acknowledged or removed in between: the script refuses, and scriptOutcome says why.
    await this.core.updateJob(item.jobId, (job) => ({ job: reopenRecipient(job, item.recipient, Date.now()), removeItem: id }));
  }

  async deleteFallback(id: string): Promise<void> {
    const { redis, keys } = this.core;
    if ((await redis.hexists(keys.fallbackStates(), id)) === 0) throw new NotFoundError(`fallback item ${id} not found`);
    await this.core.checked(
      redis
        .multi()
        .del(keys.fallback(id))
        .hdel(keys.fallbackStates(), id)
        .zrem(keys.fallbackAll(), id)
        .zrem(keys.fallbackReady(), id)
        .zrem(keys.fallbackClaims(), id)
        .srem(keys.messageFallback(messageIdOfFallback(id)), id),
    );
  }

  private async loadFallback(ids: string[]): Promise<FallbackItem[]> {
    if (ids.length === 0) return [];
    const { redis, keys } = this.core;
    const raws = await redis.mget(ids.map((id) => keys.fallback(id)));
    const states = await redis.hmget(keys.fallbackStates(), ...ids);
    const items: FallbackItem[] = [];
    for (const [i, raw] of raws.entries()) {
      const stateText = states[i];
      if (!raw || !stateText) continue;
      const checked = checkJson<Omit<FallbackItem, 'state'>>(fallbackSchema, raw, 'fallback item', ids[i]);
      if (!checked.ok) {
        await this.core.quarantineFallback(ids[i]!, checked.code, checked.reason);
        continue;
      }
      const { state, owner, expiresAt, ackedAt } = parseFallbackState(stateText);
      const item: FallbackItem = { ...checked.value, state };
      if (state === 'claimed' && owner !== undefined) item.claim = { owner, expiresAt: expiresAt ?? 0 };
      if (ackedAt !== undefined) item.ackedAt = ackedAt;
      items.push(item);
    }
    return items;
  }
}
