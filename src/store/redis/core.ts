import { Redis } from 'ioredis';
import type { Logger } from '../../log/logger';
import { parseJobId } from '../ids';
import { isClaimable } from '../records';
import { NotFoundError, StoreError, StoreUnavailableError, type FallbackItem, type JobRecord, type MessageRecord } from '../types';
import { checkDurability } from './durability';
import { RedisKeys } from './keys';
import { defineScripts, scriptOutcome, type ScriptedRedis } from './scripts';

export interface RedisStoreOptions {
  url: string;
  prefix: string;
  keepFinished: number;
  /** Longest a finished message's body is kept for unacknowledged fallback items (default 30 days). */
  fallbackRetention?: number;
  onWeakDurability: 'warn' | 'refuse';
  logger: Logger;
  /** Upper bound for one command, including time spent waiting for a reconnect. */
  commandTimeoutMs?: number;
}

/** The message as stored: everything but the jobs, which live in their own keys. */
export type StoredMessage = Omit<MessageRecord, 'jobs'> & { jobIds: string[] };
export type Lease = { owner: string; expiresAt: number };
export type JobPlan = { job: JobRecord; fallback?: FallbackItem[]; requireOwner?: string; dropLease?: boolean; removeItem?: string };

const MAX_CAS_ATTEMPTS = 50;
/** How many records one MGET reads. */
export const BATCH = 500;

const CONNECTION_FAILURE = /max retries per request|connection is closed|command timed out|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|isn't writeable/i;

/**
 * The shared core of the Redis backend under every role (queue.ts, admin.ts, fallback.ts, cache.ts,
 * retention.ts): the connection, the key names, and the multi-key changes several roles make
 * (compare-and-set of a job, removal of a message).
 */
export class RedisCore {
  readonly redis: ScriptedRedis;
  readonly keys: RedisKeys;
  private readonly where: string;
  private unreachable = false;

  constructor(readonly options: RedisStoreOptions) {
    this.keys = new RedisKeys(options.prefix);
    const client = new Redis(options.url, {
      protocol: 2,
      lazyConnect: true,
      // Bounded: while Redis is down, commands fail after a few reconnect attempts instead of waiting forever.
      maxRetriesPerRequest: 3,
      commandTimeout: options.commandTimeoutMs ?? 15_000,
      retryStrategy: (times) => Math.min(times * 100, 2_000),
    });
    client.on('error', (error: Error) => {
      if (this.unreachable) return;
      this.unreachable = true;
      options.logger.warn({ err: error.message }, 'Redis queue unreachable; retrying');
    });
    client.on('ready', () => {
      if (!this.unreachable) return;
      this.unreachable = false;
      options.logger.info('Redis queue reachable again');
    });
    this.redis = defineScripts(client);
    this.where = redisAddress(options.url);
  }

  /**
   * Runs one store operation, reporting a lost connection as StoreUnavailableError (code 'unavailable');
   * every public method of RedisStore goes through here.
   */
  async guard<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      if (error instanceof Error && !(error instanceof StoreError) && CONNECTION_FAILURE.test(error.message)) {
        throw new StoreUnavailableError(`Redis queue at ${this.where} is unreachable (${error.message})`, { cause: error });
      }
      throw error;
    }
  }

  async open(): Promise<void> {
    try {
      if (this.redis.status === 'wait') await this.redis.connect();
      await checkDurability(this.redis, this.options.onWeakDurability, this.options.logger);
    } catch (error) {
      // Stop the reconnect loop: an open that failed must not leave a client retrying in the background.
      this.redis.disconnect();
      throw error;
    }
  }

  async close(): Promise<void> {
    // QUIT on a client that is not connected would wait for a reconnect first.
    if (this.redis.status !== 'ready') {
      this.redis.disconnect();
      return;
    }
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  async readStored(id: string): Promise<StoredMessage | undefined> {
    const raw = await this.redis.get(this.keys.message(id));
    return raw ? (JSON.parse(raw) as StoredMessage) : undefined;
  }

  /** Read, change, compare-and-set one job; retried when someone else changed it in between. */
  async updateJob(jobId: string, plan: (job: JobRecord) => JobPlan | undefined, stored?: StoredMessage): Promise<JobRecord> {
    const messageId = parseJobId(jobId)?.messageId ?? '';
    const siblings = stored ?? (await this.readStored(messageId));
    if (!siblings) throw new NotFoundError(`job ${jobId} not found`);
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const raw = await this.redis.get(this.keys.job(jobId));
      if (!raw) throw new NotFoundError(`job ${jobId} not found`);
      const current = JSON.parse(raw) as JobRecord;
      const change = plan(current);
      if (!change) return current;
      const { job, fallback = [] } = change;
      const keys = [
        this.keys.job(jobId),
        this.keys.jobStates(),
        this.keys.due(),
        this.keys.leases(),
        this.keys.leaseOwners(),
        this.keys.fallbackAll(),
        this.keys.fallbackReady(),
        this.keys.fallbackClaims(),
        this.keys.fallbackStates(),
        this.keys.messageFallback(messageId),
        change.removeItem ? this.keys.fallback(change.removeItem) : this.keys.job(jobId),
        this.keys.finished(),
      ];
      const args: (string | number)[] = [
        jobId,
        raw,
        JSON.stringify(job),
        job.state,
        isClaimable(job) ? job.dueAt : '',
        change.requireOwner ?? '',
        change.dropLease ? '1' : '0',
        change.removeItem ?? '',
        messageId,
        siblings.jobIds.join('\n'),
        Date.now(),
      ];
      for (const item of fallback) {
        keys.push(this.keys.fallback(item.id));
        const { state: _state, claim: _claim, ackedAt: _ackedAt, ...immutable } = item;
        args.push(item.id, JSON.stringify(immutable), item.divertedAt);
      }
      const reply = await this.redis.sgUpdateJob(keys.length, ...keys, ...args);
      const subject = { jobId, ...(change.requireOwner !== undefined ? { owner: change.requireOwner } : {}), ...(change.removeItem !== undefined ? { itemId: change.removeItem } : {}) };
      if (scriptOutcome(reply, subject) === 'done') return job;
    }
    throw new StoreError('contention', `job ${jobId} kept changing; gave up after ${MAX_CAS_ATTEMPTS} attempts`);
  }

  async removeMessage(stored: StoredMessage): Promise<void> {
    const id = stored.id;
    const itemIds = await this.redis.smembers(this.keys.messageFallback(id));
    const tx = this.redis.multi().del(this.keys.message(id), this.keys.body(id), this.keys.bodyUpload(id), this.keys.messageFallback(id)).zrem(this.keys.messages(), id).zrem(this.keys.finished(), id);
    if (stored.jobIds.length > 0) {
      tx.del(...stored.jobIds.map((j) => this.keys.job(j)))
        .hdel(this.keys.jobStates(), ...stored.jobIds)
        .zrem(this.keys.due(), ...stored.jobIds)
        .zrem(this.keys.leases(), ...stored.jobIds)
        .hdel(this.keys.leaseOwners(), ...stored.jobIds);
    }
    if (itemIds.length > 0) {
      tx.del(...itemIds.map((i) => this.keys.fallback(i)))
        .hdel(this.keys.fallbackStates(), ...itemIds)
        .zrem(this.keys.fallbackAll(), ...itemIds)
        .zrem(this.keys.fallbackReady(), ...itemIds)
        .zrem(this.keys.fallbackClaims(), ...itemIds);
    }
    await this.checked(tx);
  }

  async checked(tx: { exec(): Promise<[Error | null, unknown][] | null> }): Promise<void> {
    const replies = await tx.exec();
    if (!replies) throw new Error('Redis transaction aborted');
    const failed = replies.find(([error]) => error)?.[0];
    if (failed) throw failed;
  }
}

/** host:port of a Redis URL, without credentials, for error messages. */
function redisAddress(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || '6379'}`;
  } catch {
    return 'the configured address';
  }
}
