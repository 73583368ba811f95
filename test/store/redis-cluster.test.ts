import { randomBytes } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { silentLogger } from '../../src/log/logger';
import { newMessageId } from '../../src/store/ids';
import { RedisKeys } from '../../src/store/redis/keys';
import { RedisStore } from '../../src/store/redis/redis-store';
import { StoreUnavailableError, type Store } from '../../src/store/types';
import { startRedisCluster, type RedisClusterHandle } from '../support/redis-cluster';
import { chunked, newMessage, readAll, redisKeyDamage, storeContract, type ContractBackend, type DamageHooks } from './contract';
import { describeEvidenceLog, outcomeInput } from './evidence-contract';

/*
 * The store contract and the evidence contract on a Redis Cluster the test starts (3 masters, 1 replica each),
 * plus what only a cluster has: where the keys go, and writes the replicas did not confirm.
 */

let cluster: RedisClusterHandle;

beforeAll(async () => {
  cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 1, nodeTimeoutMs: 2_000 });
  await cluster.waitHealthy('{x}', 1);
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
});

function openStore(prefix: string, options: { keepFinished?: number; fallbackRetention?: number; quarantineRetention?: number; replicaTimeoutMs?: number; now?: () => number } = {}): RedisStore {
  return new RedisStore({
    url: cluster.url,
    prefix,
    keepFinished: options.keepFinished ?? 7 * 86_400_000,
    fallbackRetention: options.fallbackRetention,
    ...(options.quarantineRetention !== undefined ? { quarantineRetention: options.quarantineRetention } : {}),
    onWeakDurability: 'refuse',
    logger: silentLogger(),
    cluster: { nodes: cluster.urls.slice(1), replicas: 1, replicaTimeoutMs: options.replicaTimeoutMs ?? 2_000 },
    ...(options.now ? { now: options.now } : {}),
  });
}

/** Hand-damage of the store's keys through a cluster client, under the names the store uses on a cluster. */
function clusterDamage(prefix: string): DamageHooks {
  return redisKeyDamage(new RedisKeys(prefix, true), () => new Cluster([{ host: '127.0.0.1', port: cluster.nodes[0]!.port }]));
}

function clusterBackend(): ContractBackend {
  const prefix = `${cluster.prefix}-${randomBytes(4).toString('hex')}`;
  const opened: Store[] = [];
  const open = async (options: { keepFinished?: number; fallbackRetention?: number; quarantineRetention?: number } = {}) => {
    const store = openStore(prefix, options);
    await store.open();
    opened.push(store);
    return store;
  };
  return {
    open,
    damage: clusterDamage(prefix),
    peer: async () => open(),
    async dispose() {
      for (const store of opened) await store.close();
    },
  };
}

storeContract('redis cluster', clusterBackend);

describeEvidenceLog('redis cluster', async (now) => {
  const prefix = `${cluster.prefix}-${randomBytes(4).toString('hex')}`;
  const opened: RedisStore[] = [];
  const open = async () => {
    const store = openStore(prefix, { keepFinished: 86_400_000, now });
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

describe('redis store on a cluster', () => {
  test("keeps every queue key in the prefix's slot, on the master that serves it, and the evidence in its own tag", async () => {
    const prefix = `${cluster.prefix}-slot`;
    const store = openStore(prefix);
    await store.open();
    const client = new Cluster([{ host: '127.0.0.1', port: cluster.nodes[0]!.port }]);
    try {
      const record = await store.enqueue(newMessage(['a@one.test', 'b@two.test']), chunked(Buffer.from('Subject: hi\r\n\r\nhello\r\n')));
      await store.appendEvidence([outcomeInput(1, { at: Date.now(), queueId: record.id })]);
      const master = await cluster.masterOf(`{${prefix}}`);
      await client.connect().catch(() => undefined);
      const keys: string[] = [];
      for (const node of client.nodes('master')) keys.push(...(await node.keys(`*${prefix}*`)));
      const queueKeys = keys.filter((k) => k.startsWith(`{${prefix}}:`));
      expect(queueKeys).toEqual(expect.arrayContaining([`{${prefix}}:msg:${record.id}`, `{${prefix}}:body:${record.id}`, `{${prefix}}:due`]));
      const evidenceKeys = keys.filter((k) => k.startsWith(`${prefix}:evidence:{${prefix}-evidence}:`));
      expect(evidenceKeys.length).toBeGreaterThan(0);
      expect(keys.length).toBe(queueKeys.length + evidenceKeys.length);
      // All queue keys on the one master that serves the prefix's slot.
      const masterKeys = await client
        .nodes('master')
        .find((n) => n.options.port === master.port)!
        .keys(`{${prefix}}:*`);
      expect(new Set(masterKeys)).toEqual(new Set(queueKeys));
    } finally {
      client.disconnect();
      await store.close();
    }
  });

  test('answers unavailable, and keeps no message, when the replica does not confirm the enqueue in time; accepts again once it is back', async () => {
    const prefix = `${cluster.prefix}-wait`;
    const store = openStore(prefix, { replicaTimeoutMs: 300 });
    await store.open();
    const [replica] = await cluster.replicasOf(`{${prefix}}`);
    expect(replica).toBeDefined();
    try {
      await replica!.kill9();
      await expect(store.enqueue(newMessage(['a@one.test']), chunked(Buffer.from('x\r\n')))).rejects.toBeInstanceOf(StoreUnavailableError);
      expect(await store.listMessages()).toEqual([]);
      await replica!.restart();
      await cluster.waitHealthy(`{${prefix}}`, 1);
      const record = await store.enqueue(newMessage(['a@one.test']), chunked(Buffer.from('x\r\n')));
      expect((await store.listMessages()).map((m) => m.id)).toEqual([record.id]);
    } finally {
      await replica!.restart();
      await store.close();
    }
  }, 60_000);

  test('under a given id, a copy the replica did not confirm is kept, and the retry with that id confirms it: one message', async () => {
    const prefix = `${cluster.prefix}-again`;
    const store = openStore(prefix, { replicaTimeoutMs: 300 });
    await store.open();
    const [replica] = await cluster.replicasOf(`{${prefix}}`);
    expect(replica).toBeDefined();
    try {
      const id = newMessageId();
      const body = Buffer.from('Subject: failure notice\r\n\r\nfirst try\r\n');
      await replica!.kill9();
      await expect(store.enqueue(newMessage(['a@one.test']), chunked(body), {}, { id })).rejects.toBeInstanceOf(StoreUnavailableError);
      // Not taken back: the caller sends it again under the same id.
      expect((await store.listMessages()).map((m) => m.id)).toEqual([id]);
      await replica!.restart();
      await cluster.waitHealthy(`{${prefix}}`, 1);
      const record = await store.enqueue(newMessage(['a@one.test']), chunked(Buffer.from('Subject: failure notice\r\n\r\nsecond try\r\n')), {}, { id });
      expect(record.id).toBe(id);
      expect((await store.listMessages()).map((m) => m.id)).toEqual([id]);
      expect((await readAll(await store.openBody(id))).equals(body)).toBe(true);
    } finally {
      await replica!.restart();
      await store.close();
    }
  }, 60_000);

  test('refuses to open when a node, even a replica, could lose acknowledged writes', async () => {
    const prefix = `${cluster.prefix}-weak`;
    const [replica] = await cluster.replicasOf(`{${prefix}}`);
    const node = new Redis({ host: '127.0.0.1', port: replica!.port });
    const store = openStore(prefix);
    try {
      await node.config('SET', 'appendfsync', 'everysec');
      await expect(store.open()).rejects.toThrow(new RegExp(`node 127\\.0\\.0\\.1:${replica!.port} may lose acknowledged mail: appendfsync`));
    } finally {
      // Also when the open wrongly succeeded: its connections would keep the test process alive.
      await store.close();
      await node.config('SET', 'appendfsync', 'always');
      node.disconnect();
    }
  });
});
