import { createHash } from 'node:crypto';
import { createWriteStream, promises as fs, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from '../../log/logger';
import { isMessageId, messageIdOfFallback, newMessageId, parseJobId } from '../ids';
import {
  allJobsFinal,
  applyJobResult,
  emptyCounts,
  finishedAt,
  holdJob,
  isClaimable,
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
  type ClaimedJob,
  type FallbackFilter,
  type FallbackItem,
  type HeaderFacts,
  type JobRecord,
  type JobResult,
  type MessageFilter,
  type MessageRecord,
  type NewMessage,
  type Store,
  type StoreCounts,
} from '../types';
import { fsyncDir, readJson, removeFile, tempName, writeFileAtomic } from './durable';
import { KeyedMutex, pidAlive, spoolLockHolder, withFileLock } from './locks';
import { Schedule } from './schedule';

export interface FileStoreOptions {
  path: string;
  keepFinished: number;
  logger: Logger;
}

type Lease = { owner: string; expiresAt: number };

const RESCAN_INTERVAL_MS = 60_000;
/** Debris younger than this may still be in use by a writer when no relay holds the spool. */
const DEBRIS_AGE_MS = 10 * 60_000;

/** Which debris open() may set aside: files last modified before `olderThan` (epoch ms; Infinity: all). */
type Recovery = { olderThan: number };

/**
 * The embedded spool. Layout under `path`:
 *   bodies/<id>          message body, byte for byte
 *   meta/<id>.json       MessageRecord with its jobs (the truth for state)
 *   fallback/<id>.json   FallbackItem (ids start with the message id)
 *   cache/<hash>.json    cache entries (disposable)
 *   locks/<id>.lock      per-message cross-process lock (relay and admin CLI)
 *   tmp/                 files being written; renamed into place when complete
 *   quarantine/          damaged entries found at open
 *
 * Job leases live only in the memory of the relay process that took them (one relay per spool, see
 * acquireSpoolLock). Losing a lease in a crash only makes the job claimable again, so leases cost no disk
 * write at all; every state change that matters (enqueue, completeJob, admin actions, fallback changes)
 * is fsynced, file and directory. Another process (the CLI) sees a leased job in its stored state.
 */
export class FileStore implements Store {
  readonly kind = 'file' as const;
  private readonly dirs;
  private readonly mutex = new KeyedMutex();
  private readonly schedule = new Schedule();
  private readonly leases = new Map<string, Lease>();
  /** Messages whose every job is final: the only ones sweep needs to look at. */
  private readonly finished = new Set<string>();
  /** Message ids changed on disk by someone (possibly another process) since the schedule last saw them. */
  private readonly dirty = new Set<string>();
  private watcher: FSWatcher | undefined;
  private lastRescan = 0;

  constructor(private readonly options: FileStoreOptions) {
    const root = options.path;
    this.dirs = {
      root,
      bodies: path.join(root, 'bodies'),
      meta: path.join(root, 'meta'),
      fallback: path.join(root, 'fallback'),
      cache: path.join(root, 'cache'),
      locks: path.join(root, 'locks'),
      tmp: path.join(root, 'tmp'),
      quarantine: path.join(root, 'quarantine'),
    };
  }

  async open(): Promise<void> {
    for (const dir of Object.values(this.dirs)) await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const holder = await spoolLockHolder(this.dirs.root);
    // Temp files and bodies without metadata may be a message being written right now, so only the relay
    // holding the spool lock treats them all as debris; with no relay running, only old ones; while another
    // relay runs, none.
    const recovery: Recovery | undefined =
      holder === process.pid ? { olderThan: Infinity } : holder === undefined ? { olderThan: Date.now() - DEBRIS_AGE_MS } : undefined;
    if (recovery) await this.quarantineDebris(recovery);
    await this.rescan(recovery);
    try {
      this.watcher = watch(this.dirs.meta, (_event, name) => {
        if (typeof name === 'string' && name.endsWith('.json')) this.dirty.add(name.slice(0, -5));
      });
      this.watcher.on('error', (error) => this.options.logger.warn({ err: error.message }, 'queue spool watch failed; relying on periodic rescans'));
      this.watcher.unref();
    } catch (error) {
      this.options.logger.warn({ err: (error as Error).message }, 'cannot watch the queue spool; relying on periodic rescans');
    }
  }

  async close(): Promise<void> {
    this.watcher?.close();
    this.watcher = undefined;
  }

  async ping(): Promise<void> {
    await fs.access(this.dirs.meta);
  }

  // ---- messages -------------------------------------------------------------------------------

  async enqueue(message: NewMessage, body: Readable, headers: HeaderFacts = {}): Promise<MessageRecord> {
    const id = newMessageId();
    const temp = tempName(this.dirs.tmp, `${id}.body`);
    const out = createWriteStream(temp, { flags: 'wx', mode: 0o600, flush: true });
    // A failing disk is a store failure, not an aborted body: keep the two apart for the inbound reply.
    let writeError: unknown;
    out.once('error', (error) => (writeError ??= error));
    try {
      await pipeline(body, out);
    } catch (error) {
      await fs.rm(temp, { force: true });
      if (writeError !== undefined) throw writeError;
      throw new EnqueueAbortedError(`message body not stored: ${(error as Error).message}`, { cause: error });
    }
    const record = newMessageRecord(id, message, headers, out.bytesWritten);
    const bodyFile = path.join(this.dirs.bodies, id);
    try {
      await fs.rename(temp, bodyFile);
      await Promise.all([fsyncDir(this.dirs.bodies), this.writeMeta(record)]);
    } catch (error) {
      await fs.rm(temp, { force: true });
      await fs.rm(bodyFile, { force: true });
      await fs.rm(this.metaFile(id), { force: true });
      throw error;
    }
    this.index(record);
    return this.view(record);
  }

  async getMessage(id: string): Promise<MessageRecord | undefined> {
    if (!isMessageId(id)) return undefined;
    const record = await this.readMeta(id);
    return record && this.view(record);
  }

  async listMessages(filter: MessageFilter = {}): Promise<MessageRecord[]> {
    const now = Date.now();
    const records = (await this.readAllMeta()).map((r) => this.view(r));
    return page(records.filter((r) => matchesFilter(r, filter, now)), filter);
  }

  async openBody(id: string): Promise<Readable> {
    const record = isMessageId(id) ? await this.readMeta(id) : undefined;
    if (!record) throw new NotFoundError(`message ${id} not found`);
    if (record.bodyRemoved) throw new NotFoundError(`message ${id} has no body any more`);
    const file = path.join(this.dirs.bodies, id);
    try {
      return (await fs.open(file, 'r')).createReadStream();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`message ${id} has no body`);
      throw error;
    }
  }

  // ---- delivery --------------------------------------------------------------------------------

  async claimDue(owner: string, limit: number, leaseMs: number, now = Date.now()): Promise<ClaimedJob[]> {
    await this.refresh();
    const picked = this.schedule.takeDue(now, limit, (jobId) => this.leases.has(jobId));
    for (const [jobId, lease] of this.leases) {
      if (picked.length >= limit) break;
      if (lease.expiresAt <= now) picked.push(jobId);
    }
    const lease: Lease = { owner, expiresAt: now + leaseMs };
    // Taken synchronously, before any await, so concurrent claimers in this process never share a job.
    for (const jobId of picked) this.leases.set(jobId, { ...lease });
    const claimed = await Promise.all(picked.map((jobId) => this.verifyClaim(jobId, owner)));
    return claimed.filter((c): c is ClaimedJob => c !== undefined);
  }

  async renewLease(jobId: string, owner: string, leaseMs: number): Promise<void> {
    const lease = this.leases.get(jobId);
    if (lease?.owner !== owner) throw new LeaseLostError(`lease on ${jobId} is not held by ${owner}`);
    lease.expiresAt = Date.now() + leaseMs;
  }

  async releaseLease(jobId: string, owner: string): Promise<void> {
    const lease = this.leases.get(jobId);
    if (lease?.owner !== owner) throw new LeaseLostError(`lease on ${jobId} is not held by ${owner}`);
    this.leases.delete(jobId);
    this.schedule.set(jobId, Date.now());
  }

  async completeJob(jobId: string, owner: string, result: JobResult): Promise<JobRecord> {
    const parsed = this.parseJob(jobId);
    const assertLease = () => {
      if (this.leases.get(jobId)?.owner !== owner) throw new LeaseLostError(`lease on ${jobId} is not held by ${owner}`);
    };
    assertLease();
    return this.locked(parsed.messageId, async () => {
      assertLease();
      const record = await this.readMeta(parsed.messageId);
      const index = record?.jobs.findIndex((j) => j.id === jobId) ?? -1;
      if (!record || index < 0) {
        this.leases.delete(jobId);
        throw new NotFoundError(`job ${jobId} not found (deleted while it was being delivered)`);
      }
      const now = Date.now();
      const { job, fallback } = applyJobResult(record.jobs[index]!, record, result, now);
      // Items first: a crash before the job is saved replays the attempt, which rewrites the same item ids.
      await Promise.all(fallback.map((item) => writeFileAtomic(this.dirs.tmp, this.fallbackFile(item.id), JSON.stringify(item))));
      record.jobs[index] = job;
      await this.writeMeta(record);
      this.leases.delete(jobId);
      this.index(record);
      return withLease(job, undefined);
    });
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
    if (!isMessageId(messageId)) throw new NotFoundError(`message ${messageId} not found`);
    await this.locked(messageId, async () => {
      const record = await this.readMeta(messageId);
      if (!record) throw new NotFoundError(`message ${messageId} not found`);
      await this.removeMessageFiles(record);
    });
  }

  async counts(): Promise<StoreCounts> {
    const counts = emptyCounts();
    for (const record of await this.readAllMeta()) {
      counts.messages++;
      for (const job of this.view(record).jobs) counts.jobs[job.state]++;
    }
    for (const item of await this.readAllFallback()) counts.fallback[item.state]++;
    return counts;
  }

  // ---- fallback --------------------------------------------------------------------------------

  async listFallback(filter: FallbackFilter = {}): Promise<FallbackItem[]> {
    const items = await this.readAllFallback();
    return page(items.filter((i) => filter.state === undefined || i.state === filter.state), filter);
  }

  async getFallback(id: string): Promise<FallbackItem | undefined> {
    if (!this.validFallbackId(id)) return undefined;
    return this.readFallback(id);
  }

  async claimFallback(owner: string, limit: number, leaseMs: number, now = Date.now()): Promise<FallbackItem[]> {
    const claimable = (item: FallbackItem) => item.state === 'ready' || (item.state === 'claimed' && (item.claim?.expiresAt ?? 0) <= now);
    const candidates = (await this.readAllFallback()).filter(claimable);
    const claimed: FallbackItem[] = [];
    for (const candidate of candidates) {
      if (claimed.length >= limit) break;
      const item = await this.locked(messageIdOfFallback(candidate.id), async () => {
        const current = await this.readFallback(candidate.id);
        if (!current || !claimable(current)) return undefined;
        const next: FallbackItem = { ...current, state: 'claimed', claim: { owner, expiresAt: now + leaseMs } };
        await this.writeFallback(next);
        return next;
      });
      if (item) claimed.push(item);
    }
    return claimed;
  }

  async ackFallback(id: string, owner: string): Promise<void> {
    await this.withFallback(id, async (item) => {
      if (item.state === 'acked') return;
      if (item.state !== 'claimed' || item.claim?.owner !== owner) throw new LeaseLostError(`fallback item ${id} is not claimed by ${owner}`);
      const { claim: _claim, ...rest } = item;
      await this.writeFallback({ ...rest, state: 'acked', ackedAt: Date.now() });
    });
  }

  async releaseFallback(id: string): Promise<void> {
    await this.withFallback(id, async (item) => {
      if (item.state === 'acked') throw new Error(`fallback item ${id} was already handed over; it cannot be released`);
      const record = await this.readMeta(item.queueId);
      const index = record?.jobs.findIndex((j) => j.id === item.jobId) ?? -1;
      if (record && index >= 0) {
        record.jobs[index] = reopenRecipient(record.jobs[index]!, item.recipient, Date.now());
        // The recipient is back in delivery before the item goes, so a crash in between cannot lose it.
        await this.writeMeta(record);
        this.index(record);
      }
      await removeFile(this.fallbackFile(id));
    });
  }

  async deleteFallback(id: string): Promise<void> {
    await this.withFallback(id, async () => removeFile(this.fallbackFile(id)));
  }

  // ---- cache (disposable: written without fsync) -----------------------------------------------

  async cacheGet(namespace: string, key: string): Promise<string | undefined> {
    const file = this.cacheFile(namespace, key);
    let entry: { value: string; expiresAt: number } | undefined;
    try {
      entry = await readJson(file);
    } catch {
      entry = undefined;
      await fs.rm(file, { force: true });
    }
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      await fs.rm(file, { force: true });
      return undefined;
    }
    return entry.value;
  }

  async cacheSet(namespace: string, key: string, value: string, ttlMs: number): Promise<void> {
    await writeFileAtomic(this.dirs.tmp, this.cacheFile(namespace, key), JSON.stringify({ value, expiresAt: Date.now() + ttlMs }), false);
  }

  async cacheDelete(namespace: string, key: string): Promise<void> {
    await fs.rm(this.cacheFile(namespace, key), { force: true });
  }

  // ---- retention -------------------------------------------------------------------------------

  async sweep(now = Date.now()): Promise<number> {
    await this.refresh();
    const itemsByMessage = new Map<string, FallbackItem[]>();
    for (const item of await this.readAllFallback()) {
      const list = itemsByMessage.get(item.queueId) ?? [];
      list.push(item);
      itemsByMessage.set(item.queueId, list);
    }
    let removed = 0;
    for (const id of [...this.finished]) {
      const gone = await this.locked(id, async () => {
        const record = await this.readMeta(id);
        if (!record) {
          this.finished.delete(id);
          return false;
        }
        if (!allJobsFinal(record)) {
          this.index(record);
          return false;
        }
        const items = itemsByMessage.get(id) ?? [];
        if (items.some((i) => i.state !== 'acked')) return false;
        if (!record.bodyRemoved) {
          await removeFile(path.join(this.dirs.bodies, id));
          record.bodyRemoved = true;
          await this.writeMeta(record);
        }
        if (now - finishedAt(record) < this.options.keepFinished) return false;
        await this.removeMessageFiles(record);
        return true;
      });
      if (gone) removed++;
    }
    return removed;
  }

  // ---- internals -------------------------------------------------------------------------------

  private parseJob(jobId: string): { messageId: string; domain: string } {
    const parsed = parseJobId(jobId);
    if (!parsed || !isMessageId(parsed.messageId)) throw new NotFoundError(`job ${jobId} not found`);
    return parsed;
  }

  private metaFile(id: string): string {
    return path.join(this.dirs.meta, `${id}.json`);
  }

  private fallbackFile(id: string): string {
    return path.join(this.dirs.fallback, `${id}.json`);
  }

  private cacheFile(namespace: string, key: string): string {
    return path.join(this.dirs.cache, `${createHash('sha256').update(`${namespace}\0${key}`).digest('hex')}.json`);
  }

  private validFallbackId(id: string): boolean {
    return /^[0-9A-Z]{22}\.[0-9a-f]{16}$/.test(id);
  }

  /** Serialises read-modify-write of one message, in this process and across processes. */
  private locked<T>(messageId: string, task: () => Promise<T>): Promise<T> {
    return this.mutex.run(messageId, () => withFileLock(path.join(this.dirs.locks, `${messageId}.lock`), task));
  }

  private async readMeta(id: string): Promise<MessageRecord | undefined> {
    try {
      return await readJson<MessageRecord>(this.metaFile(id));
    } catch (error) {
      this.options.logger.warn({ queueId: id, err: (error as Error).message }, 'unreadable queue entry skipped');
      return undefined;
    }
  }

  private async writeMeta(record: MessageRecord): Promise<void> {
    await writeFileAtomic(this.dirs.tmp, this.metaFile(record.id), JSON.stringify(record));
  }

  private async readFallback(id: string): Promise<FallbackItem | undefined> {
    try {
      return await readJson<FallbackItem>(this.fallbackFile(id));
    } catch {
      return undefined;
    }
  }

  private async writeFallback(item: FallbackItem): Promise<void> {
    await writeFileAtomic(this.dirs.tmp, this.fallbackFile(item.id), JSON.stringify(item));
  }

  private async withFallback(id: string, task: (item: FallbackItem) => Promise<void>): Promise<void> {
    if (!this.validFallbackId(id)) throw new NotFoundError(`fallback item ${id} not found`);
    await this.locked(messageIdOfFallback(id), async () => {
      const item = await this.readFallback(id);
      if (!item) throw new NotFoundError(`fallback item ${id} not found`);
      await task(item);
    });
  }

  private async readAllMeta(): Promise<MessageRecord[]> {
    const names = (await fs.readdir(this.dirs.meta)).filter((n) => n.endsWith('.json')).sort();
    const records = await Promise.all(names.map((n) => this.readMeta(n.slice(0, -5))));
    return records.filter((r): r is MessageRecord => r !== undefined);
  }

  private async readAllFallback(): Promise<FallbackItem[]> {
    const names = (await fs.readdir(this.dirs.fallback)).filter((n) => n.endsWith('.json'));
    const items = (await Promise.all(names.map((n) => this.readFallback(n.slice(0, -5))))).filter((i): i is FallbackItem => i !== undefined);
    return items.sort((a, b) => a.divertedAt - b.divertedAt || a.id.localeCompare(b.id));
  }

  private async updateJobs(messageId: string, change: (job: JobRecord, now: number) => JobRecord | undefined): Promise<MessageRecord> {
    if (!isMessageId(messageId)) throw new NotFoundError(`message ${messageId} not found`);
    return this.locked(messageId, async () => {
      const record = await this.readMeta(messageId);
      if (!record) throw new NotFoundError(`message ${messageId} not found`);
      const now = Date.now();
      let changed = false;
      record.jobs = record.jobs.map((job) => {
        const next = change(job, now);
        if (next) changed = true;
        return next ?? job;
      });
      if (changed) await this.writeMeta(record);
      this.index(record);
      return this.view(record);
    });
  }

  private async removeMessageFiles(record: MessageRecord): Promise<void> {
    // Metadata first: a crash afterwards leaves only a body without metadata, which open() quarantines.
    await removeFile(this.metaFile(record.id));
    await fs.rm(path.join(this.dirs.bodies, record.id), { force: true });
    const prefix = `${record.id}.`;
    const items = (await fs.readdir(this.dirs.fallback)).filter((n) => n.startsWith(prefix));
    await Promise.all(items.map((n) => fs.rm(path.join(this.dirs.fallback, n), { force: true })));
    await Promise.all([fsyncDir(this.dirs.bodies), fsyncDir(this.dirs.fallback)]);
    this.forget(record);
  }

  private view(record: MessageRecord): MessageRecord {
    return { ...record, jobs: record.jobs.map((job) => withLease(job, this.leases.get(job.id))) };
  }

  /** Brings the schedule in line with one message as stored. */
  private index(record: MessageRecord): void {
    for (const job of record.jobs) {
      if (isClaimable(job) && !this.leases.has(job.id)) this.schedule.set(job.id, job.dueAt);
      else this.schedule.delete(job.id);
    }
    if (allJobsFinal(record)) this.finished.add(record.id);
    else this.finished.delete(record.id);
  }

  private forget(record: MessageRecord): void {
    for (const job of record.jobs) {
      this.schedule.delete(job.id);
      this.leases.delete(job.id);
    }
    this.finished.delete(record.id);
  }

  private async verifyClaim(jobId: string, owner: string): Promise<ClaimedJob | undefined> {
    const parsed = parseJobId(jobId)!;
    const record = await this.readMeta(parsed.messageId);
    const job = record?.jobs.find((j) => j.id === jobId);
    const lease = this.leases.get(jobId);
    if (!record || !job || !isClaimable(job) || lease?.owner !== owner) {
      if (lease?.owner === owner) this.leases.delete(jobId);
      if (record) this.index(record);
      else this.schedule.delete(jobId);
      return undefined;
    }
    const { jobs: _jobs, ...message } = record;
    return { job: withLease(job, lease), message };
  }

  /** Picks up changes other processes made (fs.watch events, plus a periodic rescan where watching is unreliable). */
  private async refresh(): Promise<void> {
    if (Date.now() - this.lastRescan > RESCAN_INTERVAL_MS) {
      await this.rescan();
      return;
    }
    if (this.dirty.size === 0) return;
    const ids = [...this.dirty];
    this.dirty.clear();
    await Promise.all(
      ids.map(async (id) => {
        if (!isMessageId(id)) return;
        const record = await this.readMeta(id);
        if (record) this.index(record);
        else this.forgetId(id);
      }),
    );
  }

  private forgetId(messageId: string): void {
    for (const jobId of [...this.leases.keys()]) if (jobId.startsWith(`${messageId}/`)) this.leases.delete(jobId);
    this.finished.delete(messageId);
    // Schedule entries of a vanished message fail verification on claim and drop out then.
  }

  /** Rebuilds the schedule from disk; at open, also sets damaged entries aside. */
  private async rescan(recovery?: Recovery): Promise<void> {
    this.lastRescan = Date.now();
    this.dirty.clear();
    const names = (await fs.readdir(this.dirs.meta)).filter((n) => n.endsWith('.json'));
    const bodies = new Set(await fs.readdir(this.dirs.bodies));
    for (const name of names) {
      const id = name.slice(0, -5);
      let record: MessageRecord | undefined;
      let problem: string | undefined;
      try {
        record = await readJson<MessageRecord>(path.join(this.dirs.meta, name));
        if (!record || record.id !== id || !Array.isArray(record.jobs)) problem = 'metadata is not a queue record';
        else if (!record.bodyRemoved && !bodies.has(id)) problem = 'metadata without a body';
      } catch {
        problem = 'metadata is not valid JSON';
      }
      if (problem === undefined && record) {
        this.index(record);
        continue;
      }
      if (recovery) {
        // Metadata is only ever replaced by rename, so a damaged or body-less record is never work in progress.
        await this.quarantine(path.join(this.dirs.meta, name), problem!);
        if (bodies.has(id)) await this.quarantine(path.join(this.dirs.bodies, id), problem!);
      } else {
        this.options.logger.warn({ queueId: id, reason: problem }, 'damaged queue entry skipped (the relay sets it aside at its next start)');
      }
    }
    if (recovery) {
      const metaIds = new Set(names.map((n) => n.slice(0, -5)));
      for (const id of bodies) {
        const file = path.join(this.dirs.bodies, id);
        if (!metaIds.has(id) && (await this.isDebris(file, recovery))) await this.quarantine(file, 'body without metadata');
      }
    }
  }

  private async quarantineDebris(recovery: Recovery): Promise<void> {
    for (const name of await fs.readdir(this.dirs.tmp)) {
      const file = path.join(this.dirs.tmp, name);
      // Temp names carry the writer's PID: leave a live process's files alone (the admin CLI writes here too).
      const writer = Number(name.split('.').at(-3));
      if (writer !== process.pid && Number.isInteger(writer) && pidAlive(writer)) continue;
      if (await this.isDebris(file, recovery)) await this.quarantine(file, 'unfinished temporary file');
    }
  }

  private async isDebris(file: string, recovery: Recovery): Promise<boolean> {
    if (recovery.olderThan === Infinity) return true;
    const stat = await fs.stat(file).catch(() => undefined);
    return stat !== undefined && stat.mtimeMs < recovery.olderThan;
  }

  private async quarantine(file: string, reason: string): Promise<void> {
    const target = path.join(this.dirs.quarantine, `${path.basename(path.dirname(file))}.${path.basename(file)}.${Date.now()}`);
    try {
      await fs.rename(file, target);
      await fsyncDir(this.dirs.quarantine);
      this.options.logger.warn({ file: path.relative(this.dirs.root, file), movedTo: path.relative(this.dirs.root, target), reason }, 'damaged queue entry quarantined');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
}
