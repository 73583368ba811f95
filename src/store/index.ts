import { readFileSync } from 'node:fs';
import { ConfigError } from '../config/load';
import type { Config } from '../config/schema';
import type { Logger } from '../log/logger';
import { FileStore, type FileStoreOptions } from './file/file-store';
import { secretFromFile, type RedisTlsOptions } from './redis/connection';
import type { Store, StoreObserver } from './types';

export { acquireSpoolLock, spoolLockHolder, SpoolLockedError } from './file/locks';
export * from './types';
export { redactRedisUrl } from './redis/connection';

/** The configured queue backend; call open() before use. `observer` hears of quarantined entries (metrics). */
export function createStore(config: Config, logger: Logger, observer?: StoreObserver): Store {
  const queue = config.queue;
  if (queue.backend === 'redis') {
    // Loaded on demand: ioredis costs ~8 MB of RSS that a file-store relay never needs.
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- a lazy require keeps ioredis unloaded for the file store
    const { RedisStore } = require('./redis/redis-store') as typeof import('./redis/redis-store');
    return new RedisStore({
      url: queue.redis.url,
      ...redisSecrets(queue.redis),
      prefix: queue.redis.prefix,
      keepFinished: queue.keepFinished,
      fallbackRetention: config.fallback.bodyRetention,
      onWeakDurability: queue.redis.onWeakDurability,
      quarantineRetention: queue.quarantineRetention,
      anchorCopy: config.evidence.anchorCopy,
      logger,
      ...(observer ? { observer } : {}),
      ...(queue.redis.cluster.enabled ? { cluster: { nodes: queue.redis.cluster.nodes, replicas: queue.redis.cluster.replicas, replicaTimeoutMs: queue.redis.cluster.replicaTimeout } } : {}),
    });
  }
  if (queue.backend === 'lmdb') {
    // Loaded on demand: the LMDB binding is not needed by a relay on another backend.
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- a lazy require keeps lmdb unloaded for the other stores
    const { LmdbStore } = require('./lmdb/lmdb-store') as typeof import('./lmdb/lmdb-store');
    return new LmdbStore(embeddedOptions(config, logger, observer));
  }
  return new FileStore(embeddedOptions(config, logger, observer));
}

/** The options of both embedded stores (file and LMDB): the spool folder, retention and the evidence log. */
function embeddedOptions(config: Config, logger: Logger, observer?: StoreObserver): FileStoreOptions {
  const queue = config.queue;
  return {
    path: queue.path,
    keepFinished: queue.keepFinished,
    fallbackRetention: config.fallback.bodyRetention,
    quarantineRetention: queue.quarantineRetention,
    evidencePath: config.evidence.path,
    anchorCopy: config.evidence.anchorCopy,
    logger,
    ...(observer ? { observer } : {}),
  };
}

/** The Redis password file and TLS CA file read now, so a missing or unreadable one is a config error at start. */
function redisSecrets(redis: Config['queue']['redis']): { password?: string; tls?: RedisTlsOptions } {
  const read = (file: string, key: string): string => {
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read ${key} ${file}: ${(err as Error).message}`);
    }
  };
  const tls: RedisTlsOptions = {};
  if (redis.tls.ca) tls.ca = read(redis.tls.ca, 'queue.redis.tls.ca');
  if (redis.tls.servername) tls.servername = redis.tls.servername;
  return {
    ...(redis.passwordFile ? { password: secretFromFile(read(redis.passwordFile, 'queue.redis.passwordFile')) } : {}),
    ...(Object.keys(tls).length > 0 ? { tls } : {}),
  };
}
