import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { silentLogger } from '../../src/log/logger';
import { RedisStore } from '../../src/store/redis/redis-store';
import { Readable } from 'node:stream';
import { EnqueueAbortedError, StoreUnavailableError, type Store } from '../../src/store/types';
import { startRedis, type RedisHandle } from '../support/redis-server';
import { chunked, newMessage, readAll, storeContract, type ContractBackend } from './contract';

let redis: RedisHandle;
/** A shared server from SEALGATE_TEST_REDIS_URL is not ours to reconfigure or restart. */
const external = Boolean(process.env.SEALGATE_TEST_REDIS_URL);
const ownServerTest = external ? test.skip : test;

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await redis?.stop();
});

function openStore(prefix: string, options: { keepFinished?: number; fallbackRetention?: number; onWeakDurability?: 'warn' | 'refuse'; commandTimeoutMs?: number } = {}): RedisStore {
  return new RedisStore({
    url: redis.url,
    prefix,
    keepFinished: options.keepFinished ?? 7 * 86_400_000,
    fallbackRetention: options.fallbackRetention,
    onWeakDurability: options.onWeakDurability ?? (external ? 'warn' : 'refuse'),
    logger: silentLogger(),
    ...(options.commandTimeoutMs !== undefined ? { commandTimeoutMs: options.commandTimeoutMs } : {}),
  });
}

/** A fresh prefix per test, under the file's own prefix, so tests never see each other's keys. */
function redisBackend(): ContractBackend {
  const prefix = `${redis.prefix}:${randomBytes(4).toString('hex')}`;
  const opened: Store[] = [];
  const open = async (options: { keepFinished?: number; fallbackRetention?: number } = {}) => {
    const store = openStore(prefix, options);
    await store.open();
    opened.push(store);
    return store;
  };
  return {
    open,
    peer: async () => open(),
    async dispose() {
      for (const store of opened) await store.close();
    },
  };
}

storeContract('redis', redisBackend);

describe('redis store against a real server', () => {
  ownServerTest('refuses to open when Redis could lose acknowledged writes, warns when told to', async () => {
    const admin = new Redis(redis.url);
    try {
      await admin.config('SET', 'appendfsync', 'everysec');
      const strict = openStore(`${redis.prefix}:weak`, { onWeakDurability: 'refuse' });
      await expect(strict.open()).rejects.toThrow(/appendfsync/);
      await strict.close();
      const lenient = openStore(`${redis.prefix}:weak`, { onWeakDurability: 'warn' });
      await expect(lenient.open()).resolves.toBeUndefined();
      await lenient.close();
    } finally {
      await admin.config('SET', 'appendfsync', 'always');
      admin.disconnect();
    }
  });

  test('reports an unreachable Redis clearly at open', async () => {
    const nowhere = new RedisStore({ url: 'redis://127.0.0.1:1', prefix: 'none', keepFinished: 1, onWeakDurability: 'refuse', logger: silentLogger() });
    await expect(nowhere.open()).rejects.toThrow('Redis queue at 127.0.0.1:1 is unreachable');
    await nowhere.close();
  });

  test('keeps its keys under the prefix', async () => {
    const prefix = `${redis.prefix}:keys`;
    const store = openStore(prefix);
    await store.open();
    try {
      await store.enqueue(newMessage(['a@one.test']), chunked(Buffer.from('x\r\n')));
      const admin = new Redis(redis.url);
      const keys = await admin.keys('*');
      admin.disconnect();
      const ours = keys.filter((k) => k.startsWith(`${prefix}:`));
      expect(ours.length).toBeGreaterThan(3);
      expect(ours.some((k) => k.includes(':upload:'))).toBe(false);
      expect(keys.filter((k) => !k.startsWith(`${redis.prefix}:`))).toEqual([]);

      // An aborted body leaves no upload behind.
      const body = new Readable({ read() {} });
      const pending = store.enqueue(newMessage(['a@one.test']), body);
      body.push(Buffer.alloc(700_000, 'x'));
      setTimeout(() => body.destroy(new Error('client went away')), 20);
      await expect(pending).rejects.toBeInstanceOf(EnqueueAbortedError);
      const after = new Redis(redis.url);
      expect((await after.keys(`${prefix}:upload:*`)).length).toBe(0);
      after.disconnect();
    } finally {
      await store.close();
    }
  });

  ownServerTest('survives a Redis restart: fails clearly while down, works again after, nothing lost', async () => {
    const store = openStore(`${redis.prefix}:restart`, { commandTimeoutMs: 3_000 });
    await store.open();
    try {
      const body = randomBytes(600_000);
      const before = await store.enqueue(newMessage(['a@one.test']), chunked(body));
      await redis.pause();
      await expect(store.enqueue(newMessage(['b@one.test']), chunked(Buffer.from('down\r\n')))).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(store.ping()).rejects.toThrow(/is unreachable/);
      await redis.resume();
      let after: Awaited<ReturnType<Store['enqueue']>> | undefined;
      for (let attempt = 0; attempt < 50 && !after; attempt++) {
        after = await store.enqueue(newMessage(['c@one.test']), chunked(Buffer.from('up\r\n'))).catch(() => undefined);
        if (!after) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(after).toBeDefined();
      expect((await readAll(await store.openBody(before.id))).equals(body)).toBe(true);
      expect((await store.listMessages()).map((m) => m.id)).toEqual([before.id, after!.id]);
    } finally {
      await store.close();
    }
  });
});
