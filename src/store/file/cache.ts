import { promises as fs } from 'node:fs';
import type { KeyValueCache } from '../roles';
import { readJson, writeFileAtomic } from './durable';
import type { SpoolLayout } from './layout';

/** The key/value cache in the spool's cache/ folder: disposable, so written without fsync. */
export class FileCache implements KeyValueCache {
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

  async cacheDelete(namespace: string, key: string): Promise<void> {
    await fs.rm(this.layout.cacheFile(namespace, key), { force: true });
  }
}
