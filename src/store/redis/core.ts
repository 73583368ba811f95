import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../../log/logger';
import { parseJobId } from '../ids';
import { isClaimable } from '../records';
import { CHECKED_TEXTS, CheckedTexts, checkJob, checkJsonCached, checkRecord, storedMessageSchema, type Checked } from '../schema';
import {
  DamagedEntryError,
  NotFoundError,
  StoreError,
  StoreUnavailableError,
  type FallbackItem,
  type JobRecord,
  type MessageRecord,
  type QuarantineCode,
  type QuarantineEntry,
  type QuarantineKind,
  type StoreObserver,
} from '../types';
import { redisAddress, redisConnection, type RedisTlsOptions } from './connection';
import { checkDurability, clusterReplicas } from './durability';
import { RedisKeys } from './keys';
import { defineScripts, scriptOutcome, type ScriptedRedis, type StoreScripts } from './scripts';

/** A write the cluster's master applied but too few replicas confirmed in time: unavailable, yet it may stay. */
export class UnconfirmedWriteError extends StoreUnavailableError {}

/**
 * The scripts whose success a reply or a delivery relies on: on a cluster they are confirmed by replicas
 * (RedisCore.confirmed). A claim too: a lease a failover forgot would let the same job be claimed and sent again;
 * and a portal copy, its trail and a portal's acknowledgement of a hand-over (a notice may already point at them).
 */
type ConfirmedScript = 'sgEnqueue' | 'sgUpdateJob' | 'sgEvidenceAppend' | 'sgClaim' | 'sgPutPortal' | 'sgAppendPortalEvent' | 'sgAckFallback';

export interface RedisStoreOptions {
  /** `redis://` or `rediss://`; never logged as is (see redactRedisUrl). */
  url: string;
  /** Used when the URL carries no password (queue.redis.passwordFile). */
  password?: string;
  /** CA and server name for `rediss://` (queue.redis.tls). */
  tls?: RedisTlsOptions;
  prefix: string;
  keepFinished: number;
  /** Longest a finished message's body is kept for unacknowledged fallback items (default 30 days). */
  fallbackRetention?: number;
  onWeakDurability: 'warn' | 'refuse';
  logger: Logger;
  /** Upper bound for one command, including time spent waiting for a reconnect. */
  commandTimeoutMs?: number;
  /** How long quarantined entries are kept before the sweep deletes them (default 30 days). */
  quarantineRetention?: number;
  /** Told of every entry set aside (metrics). */
  observer?: StoreObserver;
  /** A second copy of each daily evidence anchor, one file per day, outside Redis; none when absent. */
  anchorCopy?: string | null;
  /** The evidence log's clock (when a record is logged, so its day); Date.now when absent. Nothing else reads it. */
  now?: () => number;
  /** A Redis Cluster (queue.redis.cluster): `url` is one seed node; absent for a single Redis. */
  cluster?: RedisClusterOptions;
}

/** How the store talks to a Redis Cluster. */
export interface RedisClusterOptions {
  /** More seed nodes besides the store's url (same credentials and TLS). */
  nodes: string[];
  /** Replicas that must hold a write before the reply that relies on it (WAIT); 0 does not wait. */
  replicas: number;
  /** How long WAIT waits for them; a shortfall is StoreUnavailableError (the write is kept). */
  replicaTimeoutMs: number;
}

/** The message as stored: everything but the jobs, which live in their own keys. */
export type StoredMessage = Omit<MessageRecord, 'jobs'> & { jobIds: string[] };
export type Lease = { owner: string; expiresAt: number };
export type JobPlan = { job: JobRecord; fallback?: FallbackItem[]; requireOwner?: string; dropLease?: boolean; removeItem?: string };

const MAX_CAS_ATTEMPTS = 50;
/** How many records one MGET reads. */
export const BATCH = 500;

const CONNECTION_FAILURE =
  /max retries per request|connection is closed|command timed out|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|isn't writeable|^(CLUSTERDOWN|TRYAGAIN|MOVED|ASK|LOADING|READONLY|MASTERDOWN)\b|Too many Cluster redirections|Failed to refresh slots cache|None of startup nodes is available|Cluster isn't ready|Cluster is ended|slots allocation group/i;
/** Replies meaning the slot is (for now) served elsewhere: the write did not run, and may be sent again. */
const REDIRECTED = /^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN|READONLY)\b|connection is closed/i;
/**
 * Connections (per node) for writes confirmed with WAIT on a cluster. WAIT covers every write the master applied
 * before it (its replication offset), so a body uploaded on the main connection is confirmed with its enqueue.
 */
const CONFIRMING_CONNECTIONS = 4;
/** Rounds a confirmed write is sent again after a redirection before it is reported unavailable. */
const MAX_REDIRECTED_ROUNDS = 20;

/**
 * The shared core of the Redis backend under every role (queue.ts, admin.ts, fallback.ts, cache.ts,
 * retention.ts): the connection, the key names, and the multi-key changes several roles make
 * (compare-and-set of a job, removal of a message).
 */
export class RedisCore {
  readonly redis: ScriptedRedis;
  /**
   * Cluster only: connections of their own for the writes confirmed with WAIT. WAIT blocks the connection it is
   * sent on until the replicas answer (up to replicaTimeout), so on the shared connection every other command
   * of the relay would queue behind it; here a few confirmations wait side by side and nothing else waits.
   */
  private readonly confirmers: Array<{ redis: ScriptedRedis; busy: number }> = [];
  readonly keys: RedisKeys;
  private readonly where: string;
  private unreachable = false;
  /** The last connection error ioredis reported: a failed open names it instead of ioredis' "Connection is closed". */
  private lastError: Error | undefined;

  constructor(readonly options: RedisStoreOptions) {
    this.keys = new RedisKeys(options.prefix, options.cluster !== undefined);
    const client = options.cluster ? clusterClient(options, options.cluster) : singleClient(options);
    client.on('error', (error: Error) => {
      this.lastError = error;
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
    if (options.cluster) {
      for (let i = 0; i < CONFIRMING_CONNECTIONS; i++) {
        const confirmer = clusterClient(options, options.cluster);
        // The main client reports the cluster's state; these only must not throw an unheard 'error'.
        confirmer.on('error', () => undefined);
        this.confirmers.push({ redis: defineScripts(confirmer), busy: 0 });
      }
    }
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
      throw this.classify(error);
    }
  }

  /**
   * A lost connection as StoreUnavailableError, any other error unchanged. Streams read after their method
   * returned (a body, portal ciphertext) fail through here too: a Redis restart mid-read must be retryable
   * (a failure DSN held and queued once Redis is back), not an unexplained error that drops it.
   */
  classify(error: unknown): unknown {
    if (error instanceof Error && !(error instanceof StoreError) && CONNECTION_FAILURE.test(error.message)) {
      return new StoreUnavailableError(`Redis queue at ${this.where} is unreachable (${error.message})`, { cause: error });
    }
    return error;
  }

  /** True when confirmed() sends more than the script (a cluster that waits for replicas): nothing may go with it. */
  get confirming(): boolean {
    return (this.options.cluster?.replicas ?? 0) > 0;
  }

  /** True when the store talks to a Redis Cluster. */
  get cluster(): boolean {
    return this.options.cluster !== undefined;
  }

  async open(): Promise<void> {
    try {
      if (this.redis.status === 'wait') await this.redis.connect();
      for (const { redis } of this.confirmers) if (redis.status === 'wait') await redis.connect();
      const client: unknown = this.redis;
      if (client instanceof Cluster) {
        // Every node, replicas included: a replica promoted by a failover must keep acknowledged writes as well.
        const nodes = client.nodes('all');
        for (const node of nodes) await checkDurability(node, this.options.onWeakDurability, this.options.logger, `${node.options.host}:${node.options.port}`);
        await this.checkReplicas(
          nodes.find((node) => node.options.readOnly !== true),
          client.options.redisOptions ?? {},
        );
      } else {
        await checkDurability(this.redis, this.options.onWeakDurability, this.options.logger);
      }
    } catch (error) {
      // Stop the reconnect loop: an open that failed must not leave a client retrying in the background.
      this.redis.disconnect();
      for (const { redis } of this.confirmers) redis.disconnect();
      const cause = this.lastError;
      if (cause && error instanceof Error && /connection is closed/i.test(error.message)) {
        throw new StoreUnavailableError(`Redis queue at ${this.where} is unreachable (${cause.message})`, { cause });
      }
      throw error;
    }
  }

  /**
   * The replicas, which the client (reading from masters only) has no connection to: each asked over a short-lived
   * connection with the cluster's credentials and TLS. One that is flagged failed or cannot be reached is reported
   * as not verified, as a node that refuses CONFIG is; one that answers with weak settings is refused (or warned of).
   */
  private async checkReplicas(master: Redis | undefined, redisOptions: RedisOptions): Promise<void> {
    if (!master) return;
    const { reachable, unreachable } = clusterReplicas((await master.cluster('NODES')) as string);
    for (const node of unreachable) this.options.logger.warn({ event: 'redis-durability-unknown', node }, 'could not ask a Redis replica for its persistence settings; its durability is not verified');
    for (const { host, port } of reachable) {
      const replica = new Redis({ ...redisOptions, host, port, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
      const node = `${host}:${port}`;
      try {
        try {
          await replica.connect();
        } catch {
          this.options.logger.warn({ event: 'redis-durability-unknown', node }, 'could not ask a Redis replica for its persistence settings; its durability is not verified');
          continue;
        }
        await checkDurability(replica, this.options.onWeakDurability, this.options.logger, node);
      } finally {
        replica.disconnect();
      }
    }
  }

  async close(): Promise<void> {
    for (const { redis } of this.confirmers) redis.disconnect();
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

  /** The message key, checked; a damaged one is quarantined and reported as DamagedEntryError. */
  async readStored(id: string): Promise<StoredMessage | undefined> {
    return this.storedFrom(await this.redis.get(this.keys.message(id)), id);
  }

  /** A message key's value read by the caller (null: no such key), checked as readStored checks it. */
  async storedFrom(raw: string | null, id: string): Promise<StoredMessage | undefined> {
    if (!raw) return undefined;
    const checked = checkStored(raw, id);
    if (!checked.ok) {
      await this.quarantine(id, 'message', checked.code, checked.reason);
      throw new DamagedEntryError(`message ${id}: ${checked.reason}; quarantined`);
    }
    return checked.value;
  }

  /**
   * Sets a message aside with everything it has (record, jobs, body, fallback items): out of the schedule, the
   * lease tables and the listings, keys renamed under `q:` until purged. Finds its jobs from the record when it
   * is readable, else from the jobstates hash. Logged once and reported to the observer once.
   */
  async quarantine(messageId: string, kind: QuarantineKind, code: QuarantineCode, reason: string, jobId?: string): Promise<void> {
    const { redis, keys: k } = this;
    const jobIds = new Set<string>();
    const raw = await redis.get(k.message(messageId));
    if (raw) {
      const checked = checkStored(raw, messageId);
      if (checked.ok) for (const id of checked.value.jobIds) jobIds.add(id);
    }
    let cursor = '0';
    do {
      const [next, fields] = await redis.hscan(k.jobStates(), cursor, 'MATCH', `${escapeGlob(messageId)}/*`, 'COUNT', 1000);
      cursor = next;
      for (let i = 0; i < fields.length; i += 2) jobIds.add(fields[i]!);
    } while (cursor !== '0');
    if (jobId !== undefined) jobIds.add(jobId);
    const itemIds = await redis.smembers(k.messageFallback(messageId));
    const moved = [k.message(messageId), k.body(messageId), k.bodyUpload(messageId), k.messageFallback(messageId), ...[...jobIds].map((id) => k.job(id)), ...itemIds.map((id) => k.fallback(id))];
    await this.setAside({ id: messageId, kind, code, reason, at: Date.now(), ...(jobId !== undefined ? { jobId } : {}) }, [...jobIds], itemIds, moved);
  }

  /** Sets one damaged fallback item aside (its message stays). */
  async quarantineFallback(itemId: string, code: QuarantineCode, reason: string): Promise<void> {
    const k = this.keys;
    await this.setAside({ id: itemId, kind: 'fallback', code, reason, at: Date.now() }, [], [itemId], [k.fallback(itemId)]);
    await this.redis.srem(k.messageFallback(itemId.split('.')[0] ?? ''), itemId);
  }

  private async setAside(entry: QuarantineEntry, jobIds: string[], itemIds: string[], moved: string[]): Promise<void> {
    const k = this.keys;
    const keys = [k.quarantine(), k.messages(), k.finished(), k.due(), k.leases(), k.leaseOwners(), k.jobStates(), k.fallbackStates(), k.fallbackAll(), k.fallbackReady(), k.fallbackClaims()];
    for (const key of moved) keys.push(key, k.quarantined(key));
    // The moved keys are kept with the entry, so a purge deletes exactly those without scanning the keyspace.
    const stored = { ...entry, keys: moved.map((key) => k.quarantined(key)) };
    const done = await this.redis.sgQuarantine(keys.length, ...keys, entry.id, JSON.stringify(stored), jobIds.length, ...jobIds, ...itemIds);
    if (done !== 1) return;
    this.options.logger.warn(
      { event: 'quarantined', id: entry.id, kind: entry.kind, code: entry.code, reason: entry.reason, ...(entry.jobId !== undefined ? { jobId: entry.jobId } : {}) },
      'damaged queue entry quarantined',
    );
    this.options.observer?.quarantined(entry);
  }

  async listQuarantined(): Promise<QuarantineEntry[]> {
    return (await this.storedQuarantine()).map(({ keys: _keys, ...entry }) => entry);
  }

  /** Deletes entries set aside before `before` with every key kept for them. */
  async purgeQuarantined(before: number): Promise<QuarantineEntry[]> {
    const purged: QuarantineEntry[] = [];
    for (const { keys, ...entry } of await this.storedQuarantine()) {
      if (entry.at >= before) continue;
      const tx = this.redis.multi().hdel(this.keys.quarantine(), entry.id);
      if (keys.length > 0) tx.del(...keys);
      await this.checked(tx);
      purged.push(entry);
    }
    return purged;
  }

  private async storedQuarantine(): Promise<Array<QuarantineEntry & { keys: string[] }>> {
    const values = await this.redis.hvals(this.keys.quarantine());
    return values
      .flatMap((value) => {
        try {
          const parsed = JSON.parse(value) as QuarantineEntry & { keys?: unknown };
          return [{ ...parsed, keys: Array.isArray(parsed.keys) ? (parsed.keys as string[]) : [] }];
        } catch {
          return [];
        }
      })
      .sort((a, b) => a.at - b.at || a.id.localeCompare(b.id));
  }

  /**
   * Read, change, compare-and-set one job; retried when someone else changed it in between. `jobRaw`: the job key
   * as the caller just read it (null: missing), used by the first attempt instead of reading it again.
   */
  async updateJob(jobId: string, plan: (job: JobRecord) => JobPlan | undefined, stored?: StoredMessage, jobRaw?: string | null): Promise<JobRecord> {
    const messageId = parseJobId(jobId)?.messageId ?? '';
    const siblings = stored ?? (await this.readStored(messageId));
    if (!siblings) throw new NotFoundError(`job ${jobId} not found`);
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      // The first attempt may start from the job key as the caller read it (the compare-and-set checks it anyway).
      const raw = attempt === 0 && jobRaw !== undefined ? jobRaw : await this.redis.get(this.keys.job(jobId));
      if (!raw) throw new NotFoundError(`job ${jobId} not found`);
      const checked = checkStoredJob(raw, jobId);
      if (!checked.ok) {
        await this.quarantine(messageId, 'job', checked.code, checked.reason, jobId);
        throw new DamagedEntryError(`job ${jobId}: ${checked.reason}; quarantined`);
      }
      const current = checked.value;
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
      const reply = await this.confirmed('sgUpdateJob', keys.length, ...keys, ...args);
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

  /**
   * An admin delete that keeps the delivery evidence: `kept` (evidenceOnly) replaces the message and its final
   * jobs; the body, fallback items and the dropped jobs go, and the message joins the finished set so retention
   * removes it once queue.keepFinished has passed.
   */
  async keepEvidenceOnly(stored: StoredMessage, kept: MessageRecord): Promise<void> {
    const k = this.keys;
    const id = stored.id;
    const { jobs, ...message } = kept;
    const keptIds = new Set(jobs.map((j) => j.id));
    const dropped = stored.jobIds.filter((j) => !keptIds.has(j));
    const itemIds = await this.redis.smembers(k.messageFallback(id));
    const tx = this.redis
      .multi()
      .set(k.message(id), JSON.stringify({ ...message, jobIds: [...keptIds] }))
      .del(k.body(id), k.bodyUpload(id), k.messageFallback(id))
      .zadd(k.finished(), kept.deletedAt ?? Date.now(), id)
      .zrem(k.due(), ...stored.jobIds)
      .zrem(k.leases(), ...stored.jobIds)
      .hdel(k.leaseOwners(), ...stored.jobIds);
    for (const job of jobs) tx.set(k.job(job.id), JSON.stringify(job)).hset(k.jobStates(), job.id, job.state);
    if (dropped.length > 0) tx.del(...dropped.map((j) => k.job(j))).hdel(k.jobStates(), ...dropped);
    if (itemIds.length > 0) {
      tx.del(...itemIds.map((i) => k.fallback(i)))
        .hdel(k.fallbackStates(), ...itemIds)
        .zrem(k.fallbackAll(), ...itemIds)
        .zrem(k.fallbackReady(), ...itemIds)
        .zrem(k.fallbackClaims(), ...itemIds);
    }
    await this.checked(tx);
  }

  /**
   * Runs one of the store's scripts whose success a reply relies on (a `250`, a recorded result, an evidence
   * record). On a cluster, replication is asynchronous: a master that fails before its replicas have the write
   * loses it. So the script and a WAIT go in one pipeline, on the one connection to the slot's master, and a
   * write fewer replicas confirmed in time than configured is StoreUnavailableError: the caller answers 4xx or
   * holds its result and retries, and nothing acknowledged rests on one node. A redirection (the slot moved in a
   * failover) means the script did not run: it is sent again to the new master. On a single Redis: the script alone.
   */
  async confirmed<K extends ConfirmedScript>(name: K, ...args: (string | number)[]): Promise<Awaited<ReturnType<StoreScripts[K]>>> {
    const cluster = this.options.cluster;
    const script = this.redis[name] as (...args: (string | number)[]) => Promise<Awaited<ReturnType<StoreScripts[K]>>>;
    if (!cluster || cluster.replicas === 0) return script.apply(this.redis, args);
    // The least busy confirming connection: its WAIT then holds up as few other writes as possible.
    const confirmer = this.confirmers.reduce((best, next) => (next.busy < best.busy ? next : best));
    confirmer.busy++;
    try {
      return await this.confirmOn(confirmer.redis, cluster, name, args);
    } finally {
      confirmer.busy--;
    }
  }

  private async confirmOn<K extends ConfirmedScript>(redis: ScriptedRedis, cluster: RedisClusterOptions, name: K, args: (string | number)[]): Promise<Awaited<ReturnType<StoreScripts[K]>>> {
    for (let round = 1; ; round++) {
      const pipeline = redis.pipeline() as unknown as Record<K, (...args: (string | number)[]) => unknown> & {
        wait(replicas: number, timeout: number): unknown;
        exec(): Promise<[Error | null, unknown][] | null>;
      };
      pipeline[name](...args);
      pipeline.wait(cluster.replicas, cluster.replicaTimeoutMs);
      const replies = await pipeline.exec();
      if (!replies || replies.length !== 2) throw new StoreUnavailableError(`Redis Cluster at ${this.where} did not answer the write`);
      const [[error, value], [waitError, acked]] = replies as [[Error | null, unknown], [Error | null, unknown]];
      if (error) {
        if (!REDIRECTED.test(error.message) || round >= MAX_REDIRECTED_ROUNDS) throw error;
        // The client only learns the new owner of the slot from a refresh: a pipeline whose WAIT answered (or
        // failed differently) is not redirected by ioredis itself.
        const client: unknown = redis;
        if (client instanceof Cluster) client.refreshSlotsCache();
        await sleep(Math.min(50 * round, 500));
        continue;
      }
      if (waitError) throw new StoreUnavailableError(`Redis Cluster at ${this.where}: the write is not known to be replicated (${waitError.message})`, { cause: waitError });
      if (Number(acked) < cluster.replicas) {
        throw new UnconfirmedWriteError(`Redis Cluster at ${this.where}: ${String(acked)} of ${cluster.replicas} replicas confirmed the write within ${cluster.replicaTimeoutMs} ms; not acknowledged`);
      }
      return value as Awaited<ReturnType<StoreScripts[K]>>;
    }
  }

  async checked(tx: { exec(): Promise<[Error | null, unknown][] | null> }): Promise<void> {
    const replies = await tx.exec();
    if (!replies) throw new Error('Redis transaction aborted');
    const failed = replies.find(([error]) => error)?.[0];
    if (failed) throw failed;
  }
}

const checkedMessages = new CheckedTexts(CHECKED_TEXTS);
const checkedJobs = new CheckedTexts(CHECKED_TEXTS);

/** A message key's JSON, checked against the stored-message schema. */
export function checkStored(raw: string, id?: string): Checked<StoredMessage> {
  return checkJsonCached(checkedMessages, raw, id, 'message record', (value) => checkRecord<StoredMessage>(storedMessageSchema, value, 'message record', id));
}

/** A job key's JSON, checked against the job schema. */
export function checkStoredJob(raw: string, id?: string): Checked<JobRecord> {
  return checkJsonCached(checkedJobs, raw, id, 'job record', (value) => checkJob(value, id));
}

/** What a pipeline's commands answered, in order; the first error among them is thrown. */
export async function pipelineValues(pipeline: { exec(): Promise<[Error | null, unknown][] | null> }): Promise<unknown[]> {
  const replies = await pipeline.exec();
  if (!replies) throw new Error('Redis pipeline aborted');
  const failed = replies.find(([error]) => error)?.[0];
  if (failed) throw failed;
  return replies.map(([, value]) => value);
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

function singleClient(options: RedisStoreOptions): Redis {
  const connection = redisConnection(options.url, options.password, options.tls);
  return new Redis(connection.url, {
    ...(connection.tls ? { tls: connection.tls } : {}),
    protocol: 2,
    lazyConnect: true,
    // Bounded: while Redis is down, commands fail after a few reconnect attempts instead of waiting forever.
    maxRetriesPerRequest: 3,
    commandTimeout: options.commandTimeoutMs ?? 15_000,
    retryStrategy: (times) => Math.min(times * 100, 2_000),
  });
}

/**
 * A Redis Cluster client seeded with the url and the extra nodes; every node gets the url's credentials and TLS.
 * Typed as Redis: the command API the store uses is the same on both (slot routing aside, which the hash tags in
 * keys.ts take care of).
 */
function clusterClient(options: RedisStoreOptions, cluster: RedisClusterOptions): Redis {
  const connection = redisConnection(options.url, options.password, options.tls);
  const parsed = new URL(connection.url);
  const seeds = [options.url, ...cluster.nodes].map((url) => {
    const node = new URL(url);
    return { host: node.hostname, port: Number(node.port || '6379') };
  });
  const secure = parsed.protocol === 'rediss:';
  const client = new Cluster(seeds, {
    lazyConnect: true,
    scaleReads: 'master',
    // While no node answers, commands fail at once (StoreUnavailableError) instead of queueing without bound.
    enableOfflineQueue: false,
    clusterRetryStrategy: (times) => Math.min(times * 100, 2_000),
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    retryDelayOnTryAgain: 200,
    retryDelayOnMoved: 50,
    slotsRefreshTimeout: 2_000,
    // TLS names are checked against the host names given, not the addresses they resolve to.
    ...(secure ? { dnsLookup: (address: string, callback: (err: null, address: string) => void) => callback(null, address) } : {}),
    redisOptions: {
      protocol: 2,
      ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
      ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
      ...(secure ? { tls: connection.tls ?? {} } : {}),
      maxRetriesPerRequest: 3,
      commandTimeout: options.commandTimeoutMs ?? 15_000,
    },
  });
  return client as unknown as Redis;
}
