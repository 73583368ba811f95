import type { Store } from '../../store/types';
import type { StsPolicy } from './policy';

/** Shared key/value cache with expiry: the store in production, a Map in unit tests. */
export interface PolicyCache {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string, ttlMs: number): Promise<void>;
  delete(key: string): Promise<void>;
}

export const MTA_STS_NAMESPACE = 'mta-sts';

/** The store's cache (shared by every relay instance on the same store) as a PolicyCache. */
export function storePolicyCache(store: Pick<Store, 'cacheGet' | 'cacheSet' | 'cacheDelete'>, namespace = MTA_STS_NAMESPACE): PolicyCache {
  return {
    get: (key) => store.cacheGet(namespace, key),
    set: (key, value, ttlMs) => store.cacheSet(namespace, key, value, ttlMs),
    delete: (key) => store.cacheDelete(namespace, key),
  };
}

/** How long the relay reuses what it read from the store's cache before reading it again. */
export const SHARED_READ_HOLD_MS = 5_000;
/** At most this many domains' reads are held; beyond it the oldest is dropped. */
const SHARED_READ_MAX_ENTRIES = 10_000;

/**
 * A shared cache (the store's) read through an in-process copy of each key's last read, reused for `holdMs`:
 * every delivery looks its domain's policy up, and without this each one is a store read (a Redis round trip, a
 * file read). This process's own writes and deletes go to the store and replace the copy at once; another
 * relay's (or the CLI's) show here within `holdMs`. Entries in the store keep their own expiry, and the MTA-STS
 * code checks the expiry in each value it reads, so a held copy never extends a policy's life.
 */
export function readThroughPolicyCache(shared: PolicyCache, options: { holdMs?: number; now?: () => number; maxEntries?: number } = {}): PolicyCache {
  const holdMs = options.holdMs ?? SHARED_READ_HOLD_MS;
  const now = options.now ?? Date.now;
  const maxEntries = options.maxEntries ?? SHARED_READ_MAX_ENTRIES;
  const held = new Map<string, { value: string | undefined; until: number }>();
  const hold = (key: string, value: string | undefined): void => {
    held.delete(key);
    if (held.size >= maxEntries) held.delete(held.keys().next().value!);
    held.set(key, { value, until: now() + holdMs });
  };
  return {
    async get(key) {
      const entry = held.get(key);
      if (entry && entry.until > now()) return entry.value;
      const value = await shared.get(key);
      hold(key, value);
      return value;
    },
    async set(key, value, ttlMs) {
      held.delete(key);
      await shared.set(key, value, ttlMs);
      hold(key, value);
    },
    async delete(key) {
      held.delete(key);
      await shared.delete(key);
      hold(key, undefined);
    },
  };
}

/** In-process cache, for tests and for a relay run without a store. */
export function memoryPolicyCache(now: () => number = Date.now): PolicyCache {
  const entries = new Map<string, { value: string; expiresAt: number }>();
  return {
    async get(key) {
      const entry = entries.get(key);
      if (!entry) return undefined;
      if (entry.expiresAt <= now()) {
        entries.delete(key);
        return undefined;
      }
      return entry.value;
    },
    async set(key, value, ttlMs) {
      entries.set(key, { value, expiresAt: now() + ttlMs });
    },
    async delete(key) {
      entries.delete(key);
    },
  };
}

/** A policy as kept in the cache. */
export interface CachedPolicy {
  id: string;
  policy: StsPolicy;
  fetchedAt: number;
  expiresAt: number;
}

/** A failed fetch, remembered so the same id is not fetched again within the back-off. */
export interface FetchFailure {
  id: string;
  at: number;
  error: string;
}

export function decodeCachedPolicy(text: string | undefined): CachedPolicy | undefined {
  if (text === undefined) return undefined;
  try {
    const value = JSON.parse(text) as Partial<CachedPolicy>;
    const policy = value.policy;
    if (typeof value.id !== 'string' || typeof value.expiresAt !== 'number' || typeof value.fetchedAt !== 'number') return undefined;
    if (!policy || !['enforce', 'testing', 'none'].includes(policy.mode) || !Array.isArray(policy.mx) || typeof policy.maxAge !== 'number') return undefined;
    return value as CachedPolicy;
  } catch {
    // A damaged entry is treated as absent; the next fetch overwrites it.
    return undefined;
  }
}

export function decodeFetchFailure(text: string | undefined): FetchFailure | undefined {
  if (text === undefined) return undefined;
  try {
    const value = JSON.parse(text) as Partial<FetchFailure>;
    return typeof value.id === 'string' && typeof value.at === 'number' ? { id: value.id, at: value.at, error: String(value.error ?? '') } : undefined;
  } catch {
    return undefined;
  }
}
