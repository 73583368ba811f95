import { promises as fs } from 'node:fs';
import type { KeyValueCache } from '../roles';
import { readJson, writeFileAtomic } from './durable';
import type { SpoolLayout } from './layout';
import { KeyedMutex, withFileLock } from './locks';

/** The key/value cache in the spool's cache/ folder: disposable, so written without fsync. */
export class FileCache implements KeyValueCache {
  private readonly mutex = new KeyedMutex();

  constructor(private readonly layout: SpoolLayout) {}

  async cacheGet(namespace: string, key: string): Promise<string | undefined> {
    const file = this.layout.cacheFile(namespace, key);
    let entry: { value: string; expiresAt: number } | undefined;
    try {
      entry = await readJson(file);
    } catch {
      entry = undefined;
      await fs.rm(file, { force: true });
    }
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      await fs.rm(file, { force: true });
      return undefined;
    }
    return entry.value;
  }

  async cacheSet(namespace: string, key: string, value: string, ttlMs: number): Promise<void> {
    await writeFileAtomic(this.layout.tmp, this.layout.cacheFile(namespace, key), JSON.stringify({ value, expiresAt: Date.now() + ttlMs }), false);
  }

  /** Under the entry's lock (this process and others): a missing, expired or non-numeric entry starts at 1 with `ttlMs`; the expiry stays. */
  async cacheIncrement(namespace: string, key: string, ttlMs: number): Promise<number> {
    const file = this.layout.cacheFile(namespace, key);
    return this.mutex.run(file, () =>
      withFileLock(this.layout.cacheLockFile(namespace, key), async () => {
        const now = Date.now();
        const entry = await readJson<{ value: string; expiresAt: number }>(file).catch(() => undefined);
        const current = entry && entry.expiresAt > now ? Number(entry.value) : Number.NaN;
        const next = Number.isSafeInteger(current) ? { value: String(current + 1), expiresAt: entry!.expiresAt } : { value: '1', expiresAt: now + ttlMs };
        await writeFileAtomic(this.layout.tmp, file, JSON.stringify(next), false);
        return Number(next.value);
      }),
    );
  }

  async cacheDelete(namespace: string, key: string): Promise<void> {
    await fs.rm(this.layout.cacheFile(namespace, key), { force: true });
  }
}
