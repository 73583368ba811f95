import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PortalCopies } from '../../src/portal/copies';
import { loadOrCreateKeyring } from '../../src/portal/crypto';
import { silentLogger } from '../../src/log/logger';
import { newMessageId } from '../../src/store/ids';
import { RedisKeys } from '../../src/store/redis/keys';
import { RedisStore } from '../../src/store/redis/redis-store';
import { Readable } from 'node:stream';
import { EnqueueAbortedError, LeaseLostError, StoreUnavailableError, type Store } from '../../src/store/types';
import { startRedis, type RedisHandle } from '../support/redis-server';
import { chunked, evidence, newMessage, readAll, redisKeyDamage, storeContract, type ContractBackend, type DamageHooks } from './contract';

/** Hand-damage of the store's keys, as redis-cli would leave them. */
function redisDamage(prefix: string): DamageHooks {
  return redisKeyDamage(new RedisKeys(prefix), () => new Redis(redis.url, { lazyConnect: false }));
}

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

function openStore(
  prefix: string,
  options: { keepFinished?: number; fallbackRetention?: number; quarantineRetention?: number; onWeakDurability?: 'warn' | 'refuse'; commandTimeoutMs?: number } = {},
): RedisStore {
  return new RedisStore({
    url: redis.url,
    prefix,
    keepFinished: options.keepFinished ?? 7 * 86_400_000,
    fallbackRetention: options.fallbackRetention,
    ...(options.quarantineRetention !== undefined ? { quarantineRetention: options.quarantineRetention } : {}),
    onWeakDurability: options.onWeakDurability ?? (external ? 'warn' : 'refuse'),
    logger: silentLogger(),
    ...(options.commandTimeoutMs !== undefined ? { commandTimeoutMs: options.commandTimeoutMs } : {}),
  });
}

/** A fresh prefix per test, under the file's own prefix, so tests never see each other's keys. */
function redisBackend(): ContractBackend {
  const prefix = `${redis.prefix}:${randomBytes(4).toString('hex')}`;
  const opened: Store[] = [];
  const open = async (options: { keepFinished?: number; fallbackRetention?: number; quarantineRetention?: number } = {}) => {
    const store = openStore(prefix, options);
    await store.open();
    opened.push(store);
    return store;
  };
  return {
    open,
    damage: redisDamage(prefix),
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

  test('a retry under a given id starts its upload afresh: part of one left by a failed first try neither fails nor corrupts it', async () => {
    const prefix = `${redis.prefix}:again-${randomBytes(3).toString('hex')}`;
    const store = openStore(prefix);
    await store.open();
    const admin = new Redis(redis.url);
    try {
      const id = newMessageId();
      // What a first try that died mid-upload leaves: the start of the body, with the upload's expiry.
      await admin.append(new RedisKeys(prefix).bodyUpload(id), Buffer.alloc(300_000, 'p'));
      await admin.pexpire(new RedisKeys(prefix).bodyUpload(id), 3_600_000);
      const body = randomBytes(600_000);
      const record = await store.enqueue(newMessage(['a@one.test']), chunked(body), {}, { id });
      expect(record).toMatchObject({ id, size: body.length });
      expect((await readAll(await store.openBody(id))).equals(body)).toBe(true);
      // Again (its first reply was lost): the first is returned, this upload dropped, nothing else stored.
      const again = await store.enqueue(newMessage(['a@one.test']), chunked(randomBytes(400_000)), {}, { id });
      expect(again).toEqual(record);
      expect((await readAll(await store.openBody(id))).equals(body)).toBe(true);
      expect(await admin.keys(`${prefix}:upload:*`)).toEqual([]);
      expect((await store.listMessages()).map((m) => m.id)).toEqual([id]);
    } finally {
      admin.disconnect();
      await store.close();
    }
  });

  test('a small message costs one round trip to enqueue, two to claim, one to open and two to record its result', async () => {
    const store = openStore(`${redis.prefix}:trips-${randomBytes(3).toString('hex')}`);
    await store.open();
    try {
      // What goes out on the store's connection: one write per command sent alone, one per pipeline.
      const stream = (store as unknown as { core: { redis: { stream: { write: (...args: unknown[]) => boolean } } } }).core.redis.stream;
      const write = jest.spyOn(stream, 'write');
      const trips = async <T>(step: () => Promise<T>): Promise<[T, number]> => {
        write.mockClear();
        const value = await step();
        return [value, write.mock.calls.length];
      };
      const body = Buffer.from('Subject: round trips\r\n\r\nsmall body\r\n');
      const [record, enqueueTrips] = await trips(() => store.enqueue(newMessage(['a@one.test']), chunked(body)));
      const [[claimed], claimTrips] = await trips(() => store.claimDue('w1', 1, 60_000));
      const [read, openTrips] = await trips(async () => readAll(await store.openBody(record.id)));
      const [job, resultTrips] = await trips(() =>
        store.completeJob(claimed!.job.id, 'w1', { recipients: [{ address: 'a@one.test', outcome: 'delivered', evidence: evidence('delivered', 'delivered') }] }),
      );
      expect(read.equals(body)).toBe(true);
      expect(job.state).toBe('delivered');
      expect({ enqueueTrips, claimTrips, openTrips, resultTrips }).toEqual({ enqueueTrips: 1, claimTrips: 2, openTrips: 1, resultTrips: 2 });
      write.mockRestore();
      // The lease is still checked before anything else: a result from a worker that lost it is refused.
      const second = await store.enqueue(newMessage(['b@one.test']), chunked(body));
      const [other] = await store.claimDue('w1', 1, 60_000);
      expect(other!.message.id).toBe(second.id);
      await expect(store.completeJob(other!.job.id, 'w2', { recipients: [] })).rejects.toBeInstanceOf(LeaseLostError);
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
      // A body being read when Redis goes away fails as unavailable (retryable: a DSN is held, not dropped).
      // 8 MB is 32 pieces: far more than the stream reads ahead, so the read is still going when Redis stops.
      const big = await store.enqueue(newMessage(['big@one.test']), chunked(randomBytes(8 * 1024 * 1024)));
      const reading = (await store.openBody(big.id))[Symbol.asyncIterator]();
      expect(((await reading.next()).value as Buffer).length).toBeGreaterThan(0);
      await redis.pause();
      await expect(drain(reading)).rejects.toBeInstanceOf(StoreUnavailableError);
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
      expect((await store.listMessages()).map((m) => m.id)).toEqual([before.id, big.id, after!.id]);
    } finally {
      await store.close();
    }
  });
});

async function drain(iterator: AsyncIterator<unknown>): Promise<void> {
  while (!(await iterator.next()).done);
}

describe('portal copies in Redis', () => {
  test('no key under the prefix holds the plaintext; the copy still opens from a second relay', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-redis-keys-'));
    const prefix = `${redis.prefix}:portal-${randomBytes(3).toString('hex')}`;
    const store = openStore(prefix);
    const other = openStore(prefix);
    const canary = `CANARY-${randomBytes(6).toString('hex')}`;
    try {
      await store.open();
      await other.open();
      const keyring = await loadOrCreateKeyring(path.join(dir, 'keys.json'), silentLogger());
      const copies = new PortalCopies(store, keyring, Date.now, { chunkSize: 4096 });
      const body = Buffer.concat([Buffer.from(`Subject: ${canary}\r\n\r\n`), randomBytes(300_000), Buffer.from(`\r\n${canary} body\r\n`)]);
      const { item, token } = await copies.create({
        fallbackId: '01JQREDIS0000000000000.0123456789abcdef',
        queueId: '01JQREDIS0000000000000',
        jobId: '01JQREDIS0000000000000/example.test',
        facts: { recipient: `pat-${canary}@example.test`, from: 'dr@clinic.test', subject: canary },
        body: chunked(body, 10_000),
        expiresAt: Date.now() + 86_400_000,
        auth: { methods: ['email-otp'] },
      });
      await copies.record(item.id, { at: Date.now(), type: 'notify.sent', actor: 'relay' });

      const elsewhere = new PortalCopies(other, keyring);
      const found = await elsewhere.byToken(token);
      expect((await readAll(await elsewhere.openMessage(found!))).equals(body)).toBe(true);
      expect(elsewhere.facts(found!).subject).toBe(canary);

      const admin = new Redis(redis.url);
      try {
        const keys = await admin.keys(`${prefix}:*`);
        expect(keys.length).toBeGreaterThan(3);
        // The scan sees what is stored in clear (ids), so it would see the canary too.
        let idsSeen = 0;
        for (const key of keys) {
          const type = await admin.type(key);
          const values: (string | Buffer)[] =
            type === 'string'
              ? [(await admin.getBuffer(key))!]
              : type === 'list'
                ? await admin.lrangeBuffer(key, 0, -1)
                : type === 'hash'
                  ? Object.entries(await admin.hgetall(key)).flat()
                  : type === 'zset'
                    ? await admin.zrange(key, '0', '-1')
                    : [];
          for (const value of [key, ...values]) {
            expect({ key, canary: Buffer.from(value).includes(canary) }).toEqual({ key, canary: false });
            if (Buffer.from(value).includes('01JQREDIS0000000000000')) idsSeen++;
          }
        }
        expect(idsSeen).toBeGreaterThan(2);
      } finally {
        admin.disconnect();
      }
    } finally {
      await store.close();
      await other.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
