import { Redis } from 'ioredis';
import { Readable } from 'node:stream';
import type { Logger } from '../../log/logger';
import { isMessageId, messageIdOfFallback, newMessageId, parseJobId } from '../ids';
import {
  applyJobResult,
  emptyCounts,
  bodyNeededByFallback,
  finishedAt,
  holdJob,
  isClaimable,
  isFinal,
  matchesFilter,
  newMessageRecord,
  page,
  releaseJob,
  reopenRecipient,
  retryJobNow,
  withLease,
} from '../records';
import {
  EnqueueAbortedError,
  LeaseLostError,
  NotFoundError,
  StoreUnavailableError,
  type ClaimedJob,
  type FallbackFilter,
  type FallbackItem,
  type HeaderFacts,
  type JobRecord,
  type JobResult,
  type JobState,
  type MessageFilter,
  type MessageRecord,
  type NewMessage,
  type Store,
  type StoreCounts,
} from '../types';
import { checkDurability } from './durability';
import { RedisKeys } from './keys';
import { defineScripts, parseFallbackState, type ScriptedRedis } from './scripts';

const DEFAULT_FALLBACK_RETENTION = 30 * 86_400_000;

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
type StoredMessage = Omit<MessageRecord, 'jobs'> & { jobIds: string[] };
type Lease = { owner: string; expiresAt: number };
type JobPlan = { job: JobRecord; fallback?: FallbackItem[]; requireOwner?: string; dropLease?: boolean; removeItem?: string };

/** Bodies travel in pieces of this size in both directions, so no body is ever held whole in memory. */
const BODY_CHUNK = 256 * 1024;
/** An upload whose writer died disappears after this long. */
const UPLOAD_TTL_MS = 3_600_000;
const MAX_CAS_ATTEMPTS = 50;

/** Store operations whose connection failures are reported as StoreUnavailableError. */
const GUARDED = [
  'open', 'ping', 'enqueue', 'getMessage', 'listMessages', 'openBody', 'claimDue', 'renewLease', 'releaseLease', 'completeJob',
  'hold', 'release', 'retryNow', 'deleteMessage', 'counts', 'listFallback', 'getFallback', 'claimFallback', 'ackFallback',
  'releaseFallback', 'deleteFallback', 'cacheGet', 'cacheSet', 'cacheDelete', 'sweep',
] as const satisfies readonly (keyof Store)[];

const CONNECTION_FAILURE = /max retries per request|connection is closed|command timed out|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|isn't writeable/i;
const BATCH = 500;

/**
 * Redis backend, for several relay instances sharing one queue. Every multi-key change is one Lua script
 * or one MULTI; job records change by compare-and-set (UPDATE_JOB) so concurrent writers retry instead of
 * overwriting each other. Leases are kept beside the jobs (leases zset + owners hash).
 */
export class RedisStore implements Store {
  readonly kind = 'redis' as const;
  private readonly redis: ScriptedRedis;
  private readonly keys: RedisKeys;
  private unreachable = false;

  constructor(private readonly options: RedisStoreOptions) {
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
    const where = redisAddress(options.url);
    for (const name of GUARDED) {
      const method = this[name] as (...args: unknown[]) => Promise<unknown>;
      (this as unknown as Record<string, unknown>)[name] = (...args: unknown[]) =>
        method.apply(this, args).catch((error: unknown) => {
          if (error instanceof Error && !(error instanceof StoreUnavailableError) && CONNECTION_FAILURE.test(error.message)) {
            throw new StoreUnavailableError(`Redis queue at ${where} is unreachable (${error.message})`, { cause: error });
          }
          throw error;
        });
    }
  }

  async open(): Promise<void> {
    if (this.redis.status === 'wait') await this.redis.connect();
    await checkDurability(this.redis, this.options.onWeakDurability, this.options.logger);
  }

  async close(): Promise<void> {
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  // ---- messages -------------------------------------------------------------------------------

  async enqueue(message: NewMessage, body: Readable, headers: HeaderFacts = {}): Promise<MessageRecord> {
    const id = newMessageId();
    const upload = this.keys.bodyUpload(id);
    try {
      const size = await this.upload(upload, body);
      const record = newMessageRecord(id, message, headers, size);
      const keys = [upload, this.keys.body(id), this.keys.message(id), this.keys.messages(), this.keys.jobStates(), this.keys.due(), this.keys.finished()];
      const args: (string | number)[] = [JSON.stringify(this.stored(record)), id, record.receivedAt, size];
      for (const job of record.jobs) {
        keys.push(this.keys.job(job.id));
        args.push(job.id, JSON.stringify(job), job.dueAt);
      }
      await this.redis.sgEnqueue(keys.length, ...keys, ...args);
      return record;
    } catch (error) {
      await this.redis.del(upload).catch(() => undefined);
      throw error;
    }
  }

  /** Streams the body into the upload key; returns its size. Body stream errors become EnqueueAbortedError. */
  private async upload(key: string, body: Readable): Promise<number> {
    let size = 0;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const flush = async () => {
      if (pendingBytes === 0) return;
      const data = Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
      const replies = await this.redis.pipeline().append(key, data).pexpire(key, UPLOAD_TTL_MS).exec();
      const failed = replies?.find(([error]) => error);
      if (failed) throw failed[0];
    };
    const chunks = body[Symbol.asyncIterator]();
    for (;;) {
      let next: IteratorResult<unknown>;
      try {
        next = await chunks.next();
      } catch (error) {
        throw new EnqueueAbortedError(`message body not stored: ${(error as Error).message}`, { cause: error });
      }
      if (next.done) break;
      const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value as string);
      pending.push(chunk);
      pendingBytes += chunk.length;
      size += chunk.length;
      if (pendingBytes >= BODY_CHUNK) await flush();
    }
    await flush();
    return size;
  }

  async getMessage(id: string): Promise<MessageRecord | undefined> {
    if (!isMessageId(id)) return undefined;
    const [record] = await this.loadMessages([id], await this.leaseMap());
    return record;
  }

  async listMessages(filter: MessageFilter = {}): Promise<MessageRecord[]> {
    const now = Date.now();
    const ids = await this.redis.zrange(this.keys.messages(), '0', '-1');
    const leases = await this.leaseMap();
    const out: MessageRecord[] = [];
    for (let i = 0; i < ids.length; i += BATCH) {
      for (const record of await this.loadMessages(ids.slice(i, i + BATCH), leases)) {
        if (matchesFilter(record, filter, now)) out.push(record);
      }
    }
    return page(out, filter);
  }

  async openBody(id: string): Promise<Readable> {
    const stored = isMessageId(id) ? await this.readStored(id) : undefined;
    if (!stored) throw new NotFoundError(`message ${id} not found`);
    if (stored.bodyRemoved) throw new NotFoundError(`message ${id} has no body any more`);
    const key = this.keys.body(id);
    const size = stored.size;
    if ((await this.redis.exists(key)) === 0) throw new NotFoundError(`message ${id} has no body`);
    const redis = this.redis;
    async function* chunks(): AsyncGenerator<Buffer> {
      for (let offset = 0; offset < size; offset += BODY_CHUNK) {
        const chunk = await redis.getrangeBuffer(key, offset, Math.min(offset + BODY_CHUNK, size) - 1);
        if (chunk.length === 0) throw new Error(`body of message ${id} disappeared while being read`);
        yield chunk;
      }
    }
    return Readable.from(chunks(), { objectMode: false });
  }

  // ---- delivery --------------------------------------------------------------------------------

  async claimDue(owner: string, limit: number, leaseMs: number, now = Date.now()): Promise<ClaimedJob[]> {
    const expiresAt = now + leaseMs;
    const marked = await this.redis.sgClaim(this.keys.due(), this.keys.leases(), this.keys.leaseOwners(), this.keys.jobStates(), now, limit, expiresAt, owner);
    if (marked.length === 0) return [];
    const resumed = new Set(marked.filter((id) => id.startsWith('!')).map((id) => id.slice(1)));
    const ids = marked.map((id) => (id.startsWith('!') ? id.slice(1) : id));
    const jobs = await this.redis.mget(ids.map((id) => this.keys.job(id)));
    const messageIds = [...new Set(ids.map((id) => parseJobId(id)?.messageId ?? ''))];
    const messages = new Map<string, StoredMessage>();
    const rawMessages = await this.redis.mget(messageIds.map((id) => this.keys.message(id)));
    rawMessages.forEach((raw, i) => raw && messages.set(messageIds[i]!, JSON.parse(raw) as StoredMessage));
    const claimed: ClaimedJob[] = [];
    for (const [i, jobId] of ids.entries()) {
      const raw = jobs[i];
      const stored = messages.get(parseJobId(jobId)?.messageId ?? '');
      if (!raw || !stored) {
        // Deleted between the claim and this read.
        await this.redis.sgReleaseLease(this.keys.leases(), this.keys.leaseOwners(), this.keys.jobStates(), this.keys.due(), jobId, owner, now);
        continue;
      }
      const { jobIds: _jobIds, ...message } = stored;
      claimed.push({ job: withLease(JSON.parse(raw) as JobRecord, { owner, expiresAt }), message, ...(resumed.has(jobId) ? { resumed: true } : {}) });
    }
    return claimed;
  }

  async renewLease(jobId: string, owner: string, leaseMs: number): Promise<void> {
    const ok = await this.redis.sgRenewLease(this.keys.leases(), this.keys.leaseOwners(), jobId, owner, Date.now() + leaseMs);
    if (ok !== 1) throw new LeaseLostError(`lease on ${jobId} is not held by ${owner}`);
  }

  async releaseLease(jobId: string, owner: string): Promise<void> {
    const ok = await this.redis.sgReleaseLease(this.keys.leases(), this.keys.leaseOwners(), this.keys.jobStates(), this.keys.due(), jobId, owner, Date.now());
    if (ok !== 1) throw new LeaseLostError(`lease on ${jobId} is not held by ${owner}`);
  }

  async completeJob(jobId: string, owner: string, result: JobResult): Promise<JobRecord> {
    if ((await this.redis.hget(this.keys.leaseOwners(), jobId)) !== owner) throw new LeaseLostError(`lease on ${jobId} is not held by ${owner}`);
    const messageId = parseJobId(jobId)?.messageId ?? '';
    const stored = await this.readStored(messageId);
    if (!stored) throw new NotFoundError(`job ${jobId} not found`);
    const job = await this.updateJob(jobId, (current) => {
      const { job: next, fallback } = applyJobResult(current, stored, result, Date.now());
      return { job: next, fallback, requireOwner: owner, dropLease: true };
    }, stored);
    return job;
  }

  // ---- admin -----------------------------------------------------------------------------------

  hold(messageId: string): Promise<MessageRecord> {
    return this.updateJobs(messageId, holdJob);
  }

  release(messageId: string): Promise<MessageRecord> {
    return this.updateJobs(messageId, releaseJob);
  }

  retryNow(messageId: string): Promise<MessageRecord> {
    return this.updateJobs(messageId, retryJobNow);
  }

  async deleteMessage(messageId: string): Promise<void> {
    const stored = isMessageId(messageId) ? await this.readStored(messageId) : undefined;
    if (!stored) throw new NotFoundError(`message ${messageId} not found`);
    await this.removeMessage(stored);
  }

  async counts(): Promise<StoreCounts> {
    const counts = emptyCounts();
    const replies = await this.redis
      .pipeline()
      .hgetall(this.keys.jobStates())
      .hgetall(this.keys.leaseOwners())
      .hvals(this.keys.fallbackStates())
      .zcard(this.keys.messages())
      .exec();
    const [states, owners, fallbackStates, messages] = (replies ?? []).map(([error, value]) => {
      if (error) throw error;
      return value;
    }) as [Record<string, string>, Record<string, string>, string[], number];
    for (const [jobId, state] of Object.entries(states)) {
      const shown = owners[jobId] !== undefined && (state === 'queued' || state === 'deferred') ? 'leased' : (state as JobState);
      counts.jobs[shown]++;
    }
    for (const value of fallbackStates) counts.fallback[parseFallbackState(value).state]++;
    counts.messages = messages;
    return counts;
  }

  // ---- fallback --------------------------------------------------------------------------------

  async listFallback(filter: FallbackFilter = {}): Promise<FallbackItem[]> {
    const ids = await this.redis.zrange(this.keys.fallbackAll(), '0', '-1');
    if (ids.length === 0) return [];
    let selected = ids;
    if (filter.state !== undefined) {
      const states = await this.redis.hmget(this.keys.fallbackStates(), ...ids);
      selected = ids.filter((_id, i) => states[i] && parseFallbackState(states[i]).state === filter.state);
    }
    return this.loadFallback(page(selected, filter));
  }

  async getFallback(id: string): Promise<FallbackItem | undefined> {
    const [item] = await this.loadFallback([id]);
    return item;
  }

  async claimFallback(owner: string, limit: number, leaseMs: number, now = Date.now()): Promise<FallbackItem[]> {
    const ids = await this.redis.sgClaimFallback(this.keys.fallbackReady(), this.keys.fallbackClaims(), this.keys.fallbackStates(), now, limit, now + leaseMs, owner);
    return this.loadFallback(ids);
  }

  async ackFallback(id: string, owner: string): Promise<void> {
    const result = await this.redis.sgAckFallback(this.keys.fallbackClaims(), this.keys.fallbackStates(), id, owner, Date.now());
    if (result === -2) throw new NotFoundError(`fallback item ${id} not found`);
    if (result !== 1) throw new LeaseLostError(`fallback item ${id} is not claimed by ${owner}`);
  }

  async releaseFallback(id: string): Promise<void> {
    const item = await this.getFallback(id);
    if (!item) throw new NotFoundError(`fallback item ${id} not found`);
    if (item.state === 'acked') throw new Error(`fallback item ${id} was already handed over; it cannot be released`);
    await this.updateJob(item.jobId, (job) => ({ job: reopenRecipient(job, item.recipient, Date.now()), removeItem: id }));
  }

  async deleteFallback(id: string): Promise<void> {
    if ((await this.redis.hexists(this.keys.fallbackStates(), id)) === 0) throw new NotFoundError(`fallback item ${id} not found`);
    await this.checked(
      this.redis
        .multi()
        .del(this.keys.fallback(id))
        .hdel(this.keys.fallbackStates(), id)
        .zrem(this.keys.fallbackAll(), id)
        .zrem(this.keys.fallbackReady(), id)
        .zrem(this.keys.fallbackClaims(), id)
        .srem(this.keys.messageFallback(messageIdOfFallback(id)), id),
    );
  }

  // ---- cache -----------------------------------------------------------------------------------

  async cacheGet(namespace: string, key: string): Promise<string | undefined> {
    return (await this.redis.get(this.keys.cache(namespace, key))) ?? undefined;
  }

  async cacheSet(namespace: string, key: string, value: string, ttlMs: number): Promise<void> {
    if (ttlMs <= 0) await this.redis.del(this.keys.cache(namespace, key));
    else await this.redis.set(this.keys.cache(namespace, key), value, 'PX', Math.ceil(ttlMs));
  }

  async cacheDelete(namespace: string, key: string): Promise<void> {
    await this.redis.del(this.keys.cache(namespace, key));
  }

  // ---- retention -------------------------------------------------------------------------------

  async sweep(now = Date.now()): Promise<number> {
    const ids = await this.redis.zrange(this.keys.finished(), '0', '-1');
    let removed = 0;
    for (let i = 0; i < ids.length; i += BATCH) {
      const raws = await this.redis.mget(ids.slice(i, i + BATCH).map((id) => this.keys.message(id)));
      for (const [j, raw] of raws.entries()) {
        if (!raw) {
          await this.redis.zrem(this.keys.finished(), ids[i + j]!);
          continue;
        }
        const stored = JSON.parse(raw) as StoredMessage;
        if (await this.sweepOne(stored, now)) removed++;
      }
    }
    return removed;
  }

  private async sweepOne(stored: StoredMessage, now: number): Promise<boolean> {
    if (stored.jobIds.length > 0) {
      const states = await this.redis.hmget(this.keys.jobStates(), ...stored.jobIds);
      if (states.some((s) => !s || !isFinal(s as JobState))) {
        await this.redis.zrem(this.keys.finished(), stored.id);
        return false;
      }
    }
    const jobs = await this.redis.mget(stored.jobIds.map((id) => this.keys.job(id)));
    const record = { ...stored, jobs: jobs.filter((j): j is string => j !== null).map((j) => JSON.parse(j) as JobRecord) };
    const itemIds = await this.redis.smembers(this.keys.messageFallback(stored.id));
    if (itemIds.length > 0) {
      const states = (await this.redis.hmget(this.keys.fallbackStates(), ...itemIds)).map((s) => (s ? parseFallbackState(s).state : 'ready'));
      if (bodyNeededByFallback(states, finishedAt(record), now, this.options.fallbackRetention ?? DEFAULT_FALLBACK_RETENTION)) return false;
    }
    if (!stored.bodyRemoved) {
      stored.bodyRemoved = true;
      await this.checked(this.redis.multi().del(this.keys.body(stored.id)).set(this.keys.message(stored.id), JSON.stringify(stored)));
    }
    if (now - finishedAt(record) < this.options.keepFinished) return false;
    await this.removeMessage(stored);
    return true;
  }

  // ---- internals -------------------------------------------------------------------------------

  private stored(record: MessageRecord): StoredMessage {
    const { jobs, ...rest } = record;
    return { ...rest, jobIds: jobs.map((j) => j.id) };
  }

  private async readStored(id: string): Promise<StoredMessage | undefined> {
    const raw = await this.redis.get(this.keys.message(id));
    return raw ? (JSON.parse(raw) as StoredMessage) : undefined;
  }

  private async leaseMap(): Promise<Map<string, Lease>> {
    const replies = await this.redis.pipeline().hgetall(this.keys.leaseOwners()).zrange(this.keys.leases(), '0', '-1', 'WITHSCORES').exec();
    const [owners, scores] = (replies ?? []).map(([error, value]) => {
      if (error) throw error;
      return value;
    }) as [Record<string, string>, string[]];
    const expiry = new Map<string, number>();
    for (let i = 0; i + 1 < scores.length; i += 2) expiry.set(scores[i]!, Number(scores[i + 1]));
    const map = new Map<string, Lease>();
    for (const [jobId, owner] of Object.entries(owners)) map.set(jobId, { owner, expiresAt: expiry.get(jobId) ?? 0 });
    return map;
  }

  private async loadMessages(ids: string[], leases: Map<string, Lease>): Promise<MessageRecord[]> {
    if (ids.length === 0) return [];
    const raws = await this.redis.mget(ids.map((id) => this.keys.message(id)));
    const stored = raws.filter((r): r is string => r !== null).map((r) => JSON.parse(r) as StoredMessage);
    const jobIds = stored.flatMap((s) => s.jobIds);
    const jobs = new Map<string, JobRecord>();
    if (jobIds.length > 0) {
      const rawJobs = await this.redis.mget(jobIds.map((id) => this.keys.job(id)));
      rawJobs.forEach((raw, i) => raw && jobs.set(jobIds[i]!, JSON.parse(raw) as JobRecord));
    }
    return stored.map(({ jobIds: ownJobs, ...message }) => ({
      ...message,
      jobs: ownJobs.flatMap((id) => {
        const job = jobs.get(id);
        return job ? [withLease(job, leases.get(id))] : [];
      }),
    }));
  }

  private async loadFallback(ids: string[]): Promise<FallbackItem[]> {
    if (ids.length === 0) return [];
    const raws = await this.redis.mget(ids.map((id) => this.keys.fallback(id)));
    const states = await this.redis.hmget(this.keys.fallbackStates(), ...ids);
    const items: FallbackItem[] = [];
    raws.forEach((raw, i) => {
      const stateText = states[i];
      if (!raw || !stateText) return;
      const { state, owner, expiresAt, ackedAt } = parseFallbackState(stateText);
      const item: FallbackItem = { ...(JSON.parse(raw) as FallbackItem), state };
      if (state === 'claimed' && owner !== undefined) item.claim = { owner, expiresAt: expiresAt ?? 0 };
      if (ackedAt !== undefined) item.ackedAt = ackedAt;
      items.push(item);
    });
    return items;
  }

  private async updateJobs(messageId: string, change: (job: JobRecord, now: number) => JobRecord | undefined): Promise<MessageRecord> {
    const stored = isMessageId(messageId) ? await this.readStored(messageId) : undefined;
    if (!stored) throw new NotFoundError(`message ${messageId} not found`);
    for (const jobId of stored.jobIds) {
      await this.updateJob(
        jobId,
        (job) => {
          const next = change(job, Date.now());
          return next && { job: next };
        },
        stored,
      );
    }
    const record = await this.getMessage(messageId);
    if (!record) throw new NotFoundError(`message ${messageId} not found`);
    return record;
  }

  /** Read, change, compare-and-set one job; retried when someone else changed it in between. */
  private async updateJob(jobId: string, plan: (job: JobRecord) => JobPlan | undefined, stored?: StoredMessage): Promise<JobRecord> {
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
      const outcome = await this.redis.sgUpdateJob(keys.length, ...keys, ...args);
      if (outcome === 1) return job;
      if (outcome === -1) throw new LeaseLostError(`lease on ${jobId} is not held by ${change.requireOwner}`);
      if (outcome === -2) throw new NotFoundError(`fallback item ${change.removeItem} not found`);
      if (outcome === -3) throw new Error(`fallback item ${change.removeItem} was already handed over; it cannot be released`);
    }
    throw new Error(`job ${jobId} kept changing; gave up after ${MAX_CAS_ATTEMPTS} attempts`);
  }

  private async removeMessage(stored: StoredMessage): Promise<void> {
    const id = stored.id;
    const itemIds = await this.redis.smembers(this.keys.messageFallback(id));
    const tx = this.redis
      .multi()
      .del(this.keys.message(id), this.keys.body(id), this.keys.bodyUpload(id), this.keys.messageFallback(id))
      .zrem(this.keys.messages(), id)
      .zrem(this.keys.finished(), id);
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

  private async checked(tx: { exec(): Promise<[Error | null, unknown][] | null> }): Promise<void> {
    const replies = await tx.exec();
    if (!replies) throw new Error('Redis transaction aborted');
    const failed = replies.find(([error]) => error);
    if (failed) throw failed[0];
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
