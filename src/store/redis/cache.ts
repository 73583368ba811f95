import type { KeyValueCache } from '../roles';
import type { RedisCore } from './core';

/** The key/value cache as plain Redis strings with a PX expiry. */
export class RedisCache implements KeyValueCache {
  constructor(private readonly core: RedisCore) {}

  async cacheGet(namespace: string, key: string): Promise<string | undefined> {
    return (await this.core.redis.get(this.core.keys.cache(namespace, key))) ?? undefined;
  }

  async cacheSet(namespace: string, key: string, value: string, ttlMs: number): Promise<void> {
    const { redis, keys } = this.core;
    if (ttlMs <= 0) await redis.del(keys.cache(namespace, key));
    else await redis.set(keys.cache(namespace, key), value, 'PX', Math.ceil(ttlMs));
  }

  async cacheIncrement(namespace: string, key: string, ttlMs: number): Promise<number> {
    return Number(await this.core.redis.sgCacheIncrement(this.core.keys.cache(namespace, key), Math.max(1, Math.ceil(ttlMs))));
  }

  async cacheDelete(namespace: string, key: string): Promise<void> {
    await this.core.redis.del(this.core.keys.cache(namespace, key));
  }
}
