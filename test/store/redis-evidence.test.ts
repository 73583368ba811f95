import { randomBytes } from 'node:crypto';
import { silentLogger } from '../../src/log/logger';
import { RedisStore } from '../../src/store/redis/redis-store';
import { startRedis, type RedisHandle } from '../support/redis-server';
import { describeEvidenceLog } from './evidence-contract';

/* The shared evidence log contract on the Redis store (a real redis-server; Redis-specific tests: redis/evidence.test.ts). */

let redis: RedisHandle;

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await redis?.stop();
});

describeEvidenceLog('redis', async (now) => {
  // A fresh prefix per test: an empty log; the peer is another store instance on the same keys, as another relay.
  const prefix = `${redis.prefix}:${randomBytes(4).toString('hex')}`;
  const opened: RedisStore[] = [];
  const open = async () => {
    const store = new RedisStore({
      url: redis.url,
      prefix,
      keepFinished: 86_400_000,
      onWeakDurability: process.env.SEALGATE_TEST_REDIS_URL ? 'warn' : 'refuse',
      logger: silentLogger(),
      now,
    });
    await store.open();
    opened.push(store);
    return store;
  };
  return {
    log: await open(),
    peer: open,
    dispose: async () => {
      for (const store of opened) await store.close();
    },
  };
});
