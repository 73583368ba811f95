import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { silentLogger } from '../../src/log/logger';
import { FileStore } from '../../src/store/file/file-store';
import { acquireSpoolLock } from '../../src/store/file/locks';
import { LmdbStore } from '../../src/store/lmdb/lmdb-store';
import { RedisStore } from '../../src/store/redis/redis-store';
import { startRedis } from '../../test/support/redis-server';
import { redisCpuSeconds } from '../relays';
import { storeHotPath, type StoreDesign } from './design';
import { JournalSpool } from './journal-spool';
import { LmdbSpool } from './lmdb-spool';
import type { DesignId } from './options';

const WEEK = 7 * 86_400_000;

/** A design over a fresh folder `dir` (removed by dispose). */
export function createDesign(id: DesignId, dir: string): StoreDesign {
  const cleanDir = (): void => rmSync(dir, { recursive: true, force: true });
  switch (id) {
    case 'file-store':
      return {
        name: id,
        note: 'src/store/file FileStore, production durability (fsynced files and folders)',
        open: async () => {
          const store = new FileStore({ path: path.join(dir, 'queue'), keepFinished: WEEK, logger: silentLogger() });
          await store.open();
          return storeHotPath(store);
        },
        dispose: async () => cleanDir(),
      };
    case 'redis-store': {
      let stop: (() => Promise<void>) | undefined;
      let url = '';
      return {
        name: id,
        note: 'src/store/redis RedisStore, local redis-server with appendfsync always (its CPU in its own row)',
        open: async () => {
          const redis = await startRedis();
          stop = () => redis.stop();
          url = redis.url;
          const store = new RedisStore({ url: redis.url, prefix: redis.prefix, keepFinished: WEEK, onWeakDurability: 'refuse', logger: silentLogger() });
          await store.open();
          return storeHotPath(store);
        },
        serverCpuSeconds: () => redisCpuSeconds(url),
        dispose: async () => {
          await stop?.();
          cleanDir();
        },
      };
    }
    case 'lmdb-store': {
      let release: (() => Promise<void>) | undefined;
      return {
        name: id,
        note: 'src/store/lmdb LmdbStore, production durability (each commit awaited until flushed), spool lock held as by the relay',
        open: async () => {
          const spool = path.join(dir, 'queue');
          mkdirSync(spool, { recursive: true });
          release = await acquireSpoolLock(spool);
          const store = new LmdbStore({ path: spool, keepFinished: WEEK, logger: silentLogger() });
          await store.open();
          return storeHotPath(store);
        },
        dispose: async () => {
          await release?.();
          cleanDir();
        },
      };
    }
    case 'lmdb':
    case 'lmdb-nooverlap':
      return {
        name: id,
        note:
          id === 'lmdb'
            ? 'PROTOTYPE lmdb-js 3.5.6, batched async commits, overlappingSync (default): acknowledged after `flushed`'
            : 'PROTOTYPE lmdb-js 3.5.6, batched async commits, overlappingSync off (flush inside the commit)',
        open: () => LmdbSpool.open({ path: path.join(dir, 'lmdb'), overlappingSync: id === 'lmdb' }),
        dispose: async () => cleanDir(),
      };
    case 'journal':
      return {
        name: id,
        note: 'PROTOTYPE append-only journal, one writev + one fdatasync per batch (group commit)',
        open: () => JournalSpool.open(path.join(dir, 'journal')),
        dispose: async () => cleanDir(),
      };
  }
}
