import { Cluster, Redis } from 'ioredis';
import { silentLogger } from '../../../src/log/logger';
import { RedisCore } from '../../../src/store/redis/core';
import { StoreError, StoreUnavailableError } from '../../../src/store/types';

/* What a cluster's transient errors become: unavailable (callers hold and retry), never a plain failure. No sockets. */

function core(cluster: boolean): RedisCore {
  return new RedisCore({
    url: 'redis://127.0.0.1:1',
    prefix: 'sg',
    keepFinished: 1,
    onWeakDurability: 'refuse',
    logger: silentLogger(),
    ...(cluster ? { cluster: { nodes: [], replicas: 1, replicaTimeoutMs: 100 } } : {}),
  });
}

describe('RedisCore.classify on a cluster', () => {
  test.each([
    'CLUSTERDOWN The cluster is down',
    'CLUSTERDOWN Hash slot not served',
    'TRYAGAIN Multiple keys request during rehashing of slot',
    'MOVED 3999 127.0.0.1:7102',
    'ASK 3999 127.0.0.1:7102',
    "READONLY You can't write against a read only replica.",
    'LOADING Redis is loading the dataset in memory',
    'Too many Cluster redirections. Last error: Error: Connection is closed.',
    'Failed to refresh slots cache.',
    'None of startup nodes is available',
    "Cluster isn't ready and enableOfflineQueue options is false",
  ])('%s is unavailable', (message) => {
    const classified = core(true).classify(new Error(message));
    expect(classified).toBeInstanceOf(StoreUnavailableError);
    expect((classified as StoreError).code).toBe('unavailable');
  });

  test('the cluster client is made on a cluster only (a single Redis keeps its plain client and key names); errors retrying cannot fix stay as they are', () => {
    const single = core(false);
    const clustered = core(true);
    expect(single.redis as unknown).toBeInstanceOf(Redis);
    expect(clustered.redis as unknown).toBeInstanceOf(Cluster);
    expect(single.keys.message('M')).toBe('sg:msg:M');
    expect(clustered.keys.message('M')).toBe('{sg}:msg:M');
    // A script error, a wrong type or a cross-slot request stays what it is: retrying cannot fix it.
    for (const message of ['ERR Error running script', 'WRONGTYPE Operation against a key holding the wrong kind of value', "CROSSSLOT Keys in request don't hash to the same slot"]) {
      const error = new Error(message);
      expect(clustered.classify(error)).toBe(error);
    }
    single.redis.disconnect();
    clustered.redis.disconnect();
  });
});
