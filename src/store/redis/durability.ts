import type { Redis } from 'ioredis';
import type { Logger } from '../../log/logger';

/** Settings under which Redis may lose or evict a message it already acknowledged. */
export async function durabilityProblems(redis: Redis): Promise<string[] | undefined> {
  const read = async (name: string): Promise<string | undefined> => {
    const reply = await redis.config('GET', name);
    return reply[1];
  };
  let settings: { appendonly?: string; appendfsync?: string; policy?: string };
  try {
    settings = { appendonly: await read('appendonly'), appendfsync: await read('appendfsync'), policy: await read('maxmemory-policy') };
  } catch {
    return undefined; // CONFIG disabled or renamed (managed Redis): cannot tell.
  }
  const problems: string[] = [];
  if (settings.appendonly !== 'yes') problems.push(`appendonly is "${settings.appendonly}" (needs "yes")`);
  else if (settings.appendfsync !== 'always') problems.push(`appendfsync is "${settings.appendfsync}" (needs "always": otherwise acknowledged writes can be lost)`);
  if (settings.policy !== 'noeviction') problems.push(`maxmemory-policy is "${settings.policy}" (needs "noeviction": otherwise queued mail can be evicted)`);
  return problems;
}

/**
 * Warns about, or refuses, a Redis that could lose acknowledged mail. `node` (host:port) names one node of a
 * cluster, each of which is checked: any of them may be the master that acknowledges a write after a failover.
 */
export async function checkDurability(redis: Redis, mode: 'warn' | 'refuse', logger: Logger, node?: string): Promise<void> {
  const problems = await durabilityProblems(redis);
  // Settings and the node's address only: nothing of any message.
  const where = node !== undefined ? { node } : {};
  if (problems === undefined) {
    logger.warn({ event: 'redis-durability-unknown', ...where }, 'could not read Redis persistence settings (CONFIG GET refused); durability of the queue is not verified');
    return;
  }
  if (problems.length === 0) return;
  if (mode === 'refuse') {
    const redisName = node !== undefined ? `Redis node ${node}` : 'Redis';
    throw new Error(`${redisName} may lose acknowledged mail: ${problems.join('; ')}. Fix the Redis configuration or set queue.redis.onWeakDurability: warn`);
  }
  logger.warn({ event: 'redis-durability-weak', problems, ...where }, 'Redis may lose acknowledged mail; set appendonly yes, appendfsync always, maxmemory-policy noeviction');
}

/**
 * The replicas a CLUSTER NODES reply lists that can be asked now (host and port), and those it flags failed or
 * without an address (they cannot be checked until they are back). A cluster client that reads from masters only
 * holds no connection to replicas, so they are found here.
 */
export function clusterReplicas(nodesText: string): { reachable: Array<{ host: string; port: number }>; unreachable: string[] } {
  const reachable: Array<{ host: string; port: number }> = [];
  const unreachable: string[] = [];
  for (const line of nodesText.split('\n')) {
    const [, address, flagText] = line.trim().split(' ');
    if (address === undefined || flagText === undefined) continue;
    const flags = flagText.split(',');
    if (!flags.includes('slave') && !flags.includes('replica')) continue;
    const endpoint = address.split('@')[0]!.split(',')[0]!;
    const colon = endpoint.lastIndexOf(':');
    const host = endpoint.slice(0, colon).replace(/^\[|\]$/g, '');
    const port = Number(endpoint.slice(colon + 1));
    if (flags.includes('fail') || flags.includes('noaddr') || host === '' || !Number.isInteger(port) || port <= 0) unreachable.push(endpoint);
    else reachable.push({ host, port });
  }
  return { reachable, unreachable };
}
