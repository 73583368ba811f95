import type { Config } from '../config/schema';
import type { Logger } from '../log/logger';
import { FileStore } from './file/file-store';
import type { Store, StoreObserver } from './types';

export { acquireSpoolLock, spoolLockHolder, SpoolLockedError } from './file/locks';
export * from './types';

/** The configured queue backend; call open() before use. `observer` hears of quarantined entries (metrics). */
export function createStore(config: Config, logger: Logger, observer?: StoreObserver): Store {
  const queue = config.queue;
  if (queue.backend === 'redis') {
    // Loaded on demand: ioredis costs ~8 MB of RSS that a file-store relay never needs.
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- a lazy require keeps ioredis unloaded for the file store
    const { RedisStore } = require('./redis/redis-store') as typeof import('./redis/redis-store');
    return new RedisStore({
      url: queue.redis.url,
      prefix: queue.redis.prefix,
      keepFinished: queue.keepFinished,
      fallbackRetention: config.fallback.bodyRetention,
      onWeakDurability: queue.redis.onWeakDurability,
      quarantineRetention: queue.quarantineRetention,
      logger,
      ...(observer ? { observer } : {}),
    });
  }
  return new FileStore({
    path: queue.path,
    keepFinished: queue.keepFinished,
    fallbackRetention: config.fallback.bodyRetention,
    quarantineRetention: queue.quarantineRetention,
    logger,
    ...(observer ? { observer } : {}),
  });
}
