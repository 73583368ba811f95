import { createWriteStream, promises as fs, watch, type FSWatcher } from 'node:fs';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from '../../log/logger';
import { isMessageId, messageIdOfFallback, newMessageId, parseJobId } from '../ids';
import {
  allJobsFinal,
  applyJobResult,
  bodyNeededByFallback,
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
import { idOfJsonName, SpoolLayout } from './layout';
import { KeyedMutex, spoolLockHolder, withFileLock } from './locks';
import { inspectMeta, Quarantine, type Recovery } from './recovery';
import { SpoolIndex, type Lease } from './spool-index';

export interface FileStoreOptions {
  path: string;
  keepFinished: number;
  /** Longest a finished message's body is kept for unacknowledged fallback items (default 30 days). */
  fallbackRetention?: number;
  logger: Logger;
}

const DEFAULT_FALLBACK_RETENTION = 30 * 86_400_000;

/** Full re-read of the spool, for changes fs.watch missed (network file systems, overflowed events). */
const RESCAN_INTERVAL_MS = 60_000;
/** Debris younger than this may still be in use by a writer when no relay holds the spool. */
const DEBRIS_AGE_MS = 10 * 60_000;

/**
 * The embedded spool (layout.ts). Every state change that matters (enqueue, completeJob, admin actions,
 * fallback changes) is written to a temp file, fsynced, renamed into place and its directory fsynced.
 * Job leases are memory-only (spool-index.ts). The relay and the admin CLI may use one spool at once:
 * every read-modify-write of a message holds its lock, and claims are checked against the metadata on disk.
 */
export class FileStore implements Store {
  readonly kind = 'file' as const;
  private readonly layout: SpoolLayout;
  private readonly quarantine: Quarantine;
  private readonly mutex = new KeyedMutex();
  private readonly index = new SpoolIndex();
  /** Ids changed on disk (possibly by another process) since the index last saw them. */
  private readonly dirtyMessages = new Set<string>();
  private readonly dirtyFallback = new Set<string>();
  /**
   * Renames into meta/ this process made whose fs.watch event has not arrived yet. Each rename
   * raises one event; the index already holds what was written, so that echo is skipped instead
   * of re-reading the file. Another process's change raises its own event and is still read.
   */
  private readonly ownMetaWrites = new Map<string, number>();
  private readonly watchers: FSWatcher[] = [];
  private lastRescan = 0;

  constructor(private readonly options: FileStoreOptions) {
    this.layout = new SpoolLayout(options.path);
    this.quarantine = new Quarantine(this.layout, options.logger);
  }

  async open(): Promise<void> {
    for (const dir of this.layout.folders()) await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const holder = await spoolLockHolder(this.layout.root);
    // Temp files and bodies without metadata may be a message being written right now, so only the relay
    // holding the spool lock treats them all as debris; with no relay running, only old ones; while another
    // process is the relay, none.
    const recovery: Recovery | undefined =
      holder === process.pid ? { olderThan: Infinity } : holder === undefined ? { olderThan: Date.now() - DEBRIS_AGE_MS } : undefined;
    if (recovery) await this.quarantine.tempFiles(recovery);
    await this.rescan(recovery);
    this.watch(this.layout.meta, this.dirtyMessages, this.ownMetaWrites);
    this.watch(this.layout.fallback, this.dirtyFallback);
  }

  async close(): Promise<void> {
    for (const watcher of this.watchers.splice(0)) watcher.close();
  }

  async ping(): Promise<void> {
    await fs.access(this.layout.meta);
  }

  // ---- messages -------------------------------------------------------------------------------

  async enqueue(message: NewMessage, body: Readable, headers: HeaderFacts = {}): Promise<MessageRecord> {
    const id = newMessageId();
    const temp = tempName(this.layout.tmp, `${id}.body`);
    const out = createWriteStream(temp, { flags: 'wx', mode: 0o600, flush: true });
    // A failing disk is a store failure, not an aborted body: keep the two apart for the inbound reply.
    // Whichever side fails first is the cause; pipeline then destroys the other with the same error.
    let firstFailure: 'body' | 'disk' | undefined;
    body.once('error', () => (firstFailure ??= 'body'));
    out.once('error', () => (firstFailure ??= 'disk'));
    try {
      await pipeline(body, out);
    } catch (error) {
      // The file may still be being opened: remove it only once the stream is closed, or it would reappear.
      if (!out.closed) await new Promise<void>((resolve) => out.once('close', () => resolve()));
      await fs.rm(temp, { force: true });
      if (firstFailure === 'disk') throw error;
      throw new EnqueueAbortedError(`message body not stored: ${(error as Error).message}`, { cause: error });
    }
    const record = newMessageRecord(id, message, headers, out.bytesWritten);
    const bodyFile = this.layout.bodyFile(id);
    try {
      // Body before metadata: a crash in between leaves a body without metadata, which open() sets aside.
      await fs.rename(temp, bodyFile);
      await Promise.all([fsyncDir(this.layout.bodies), this.writeMeta(record)]);
    } catch (error) {
      await fs.rm(temp, { force: true });
      await fs.rm(this.layout.metaFile(id), { force: true });
      await fs.rm(bodyFile, { force: true });
      throw error;
    }
    this.index.add(record);
    return this.index.view(record);
  }

  async getMessage(id: string): Promise<MessageRecord | undefined> {
    if (!isMessageId(id)) return undefined;
    const record = await this.readMeta(id);
    return record && this.index.view(record);
  }

  async listMessages(filter: MessageFilter = {}): Promise<MessageRecord[]> {
    const now = Date.now();
    const records = (await this.readAllMeta()).map((r) => this.index.view(r));
    return page(
      records.filter((r) => matchesFilter(r, filter, now)),
      filter,
    );
  }

  async openBody(id: string): Promise<Readable> {
    const record = isMessageId(id) ? await this.readMeta(id) : undefined;
    if (!record) throw new NotFoundError(`message ${id} not found`);
    if (record.bodyRemoved) throw new NotFoundError(`message ${id} has no body any more`);
    try {
      return (await fs.open(this.layout.bodyFile(id), 'r')).createReadStream();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`message ${id} has no body`);
      throw error;
    }
  }

  // ---- delivery --------------------------------------------------------------------------------

  async claimDue(owner: string, limit: number, leaseMs: number, now = Date.now()): Promise<ClaimedJob[]> {
    await this.refresh();
    const leases = this.index.leases;
    const picked = this.index.schedule.takeDue(now, limit, (jobId) => leases.has(jobId));
    const resumed = new Set<string>();
    for (const [jobId, lease] of leases) {
      if (picked.length >= limit) break;
      if (lease.expiresAt > now) continue;
      picked.push(jobId);
      resumed.add(jobId);
    }
    // Leased synchronously, before any await, so concurrent claimers in this process never share a job.
    for (const jobId of picked) leases.set(jobId, { owner, expiresAt: now + leaseMs });
    const claimed = await Promise.all(picked.map((jobId) => this.verifyClaim(jobId, owner, resumed.has(jobId))));
    return claimed.filter((c): c is ClaimedJob => c !== undefined);
  }

  async renewLease(jobId: string, owner: string, leaseMs: number): Promise<void> {
    this.leaseOf(jobId, owner).expiresAt = Date.now() + leaseMs;
  }

  async releaseLease(jobId: string, owner: string): Promise<void> {
    this.leaseOf(jobId, owner);
    this.index.leases.delete(jobId);
    // The stored job is unchanged (still waiting, due at or before now): just offer it again.
    this.index.schedule.set(jobId, Date.now());
  }

  async completeJob(jobId: string, owner: string, result: JobResult): Promise<JobRecord> {
    const parsed = this.parseJob(jobId);
    this.leaseOf(jobId, owner);
    return this.locked(parsed.messageId, async () => {
      this.leaseOf(jobId, owner);
      const record = await this.readMeta(parsed.messageId);
      const index = record?.jobs.findIndex((j) => j.id === jobId) ?? -1;
      if (!record || index < 0) {
        this.index.leases.delete(jobId);
        throw new NotFoundError(`job ${jobId} not found (deleted while it was being delivered)`);
      }
      const { job, fallback } = applyJobResult(record.jobs[index]!, record, result, Date.now());
      // Items first: a crash before the job is saved replays the attempt, which rewrites the same item ids.
      await Promise.all(fallback.map((item) => this.writeFallback(item)));
      record.jobs[index] = job;
      await this.writeMeta(record);
      this.index.leases.delete(jobId);
      this.index.add(record);
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
      await this.removeMessageFiles(record.id);
    });
  }

  /** From the in-memory index: cheap enough for metrics scrapes; another process's changes show once seen. */
  async counts(): Promise<StoreCounts> {
    await this.refresh();
    return this.index.counts();
  }

  // ---- fallback --------------------------------------------------------------------------------

  async listFallback(filter: FallbackFilter = {}): Promise<FallbackItem[]> {
    const items = await this.readAllFallback();
    return page(
      items.filter((i) => filter.state === undefined || i.state === filter.state),
      filter,
    );
  }

  async getFallback(id: string): Promise<FallbackItem | undefined> {
    if (!this.validFallbackId(id)) return undefined;
    return this.readFallback(id);
  }

  async claimFallback(owner: string, limit: number, leaseMs: number, now = Date.now()): Promise<FallbackItem[]> {
    await this.refresh();
    const claimable = (item: FallbackItem) => item.state === 'ready' || (item.state === 'claimed' && (item.claim?.expiresAt ?? 0) <= now);
    const candidates = [...this.index.fallback.values()].filter(claimable).sort(byDiversion);
    const claimed: FallbackItem[] = [];
    for (const candidate of candidates) {
      if (claimed.length >= limit) break;
      const item = await this.locked(messageIdOfFallback(candidate.id), async () => {
        const current = await this.readFallback(candidate.id);
        if (!current) this.index.fallback.delete(candidate.id);
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
        this.index.add(record);
      }
      await this.removeFallback(id);
    });
  }

  async deleteFallback(id: string): Promise<void> {
    await this.withFallback(id, async () => this.removeFallback(id));
  }

  // ---- cache (disposable: written without fsync) -----------------------------------------------

  async cacheGet(namespace: string, key: string): Promise<string | undefined> {
    const file = this.layout.cacheFile(namespace, key);
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
    await writeFileAtomic(this.layout.tmp, this.layout.cacheFile(namespace, key), JSON.stringify({ value, expiresAt: Date.now() + ttlMs }), false);
  }

  async cacheDelete(namespace: string, key: string): Promise<void> {
    await fs.rm(this.layout.cacheFile(namespace, key), { force: true });
  }

  // ---- retention -------------------------------------------------------------------------------

  async sweep(now = Date.now()): Promise<number> {
    await this.refresh();
    const itemsByMessage = new Map<string, FallbackItem[]>();
    for (const item of this.index.fallback.values()) {
      const list = itemsByMessage.get(item.queueId) ?? [];
      list.push(item);
      itemsByMessage.set(item.queueId, list);
    }
    let removed = 0;
    for (const id of [...this.index.finished]) {
      const gone = await this.locked(id, async () => {
        const record = await this.readMeta(id);
        if (!record) {
          this.index.remove(id);
          return false;
        }
        if (!allJobsFinal(record)) {
          this.index.add(record);
          return false;
        }
        // The hint says which messages have items; their states are read from disk.
        const items = await Promise.all((itemsByMessage.get(id) ?? []).map((i) => this.readFallback(i.id)));
        const states = items.map((i) => i?.state);
        if (bodyNeededByFallback(states, finishedAt(record), now, this.options.fallbackRetention ?? DEFAULT_FALLBACK_RETENTION)) return false;
        if (!record.bodyRemoved) {
          await removeFile(this.layout.bodyFile(id));
          record.bodyRemoved = true;
          await this.writeMeta(record);
        }
        if (now - finishedAt(record) < this.options.keepFinished) return false;
        await this.removeMessageFiles(id);
        return true;
      });
      if (gone) removed++;
    }
    return removed;
  }

  // ---- internals -------------------------------------------------------------------------------

  private watch(dir: string, dirty: Set<string>, ownWrites?: Map<string, number>): void {
    try {
      const watcher = watch(dir, (_event, name) => {
        const id = typeof name === 'string' ? idOfJsonName(name) : undefined;
        if (!id) return;
        const pending = ownWrites?.get(id) ?? 0;
        if (pending > 0) {
          if (pending === 1) ownWrites!.delete(id);
          else ownWrites!.set(id, pending - 1);
          return;
        }
        dirty.add(id);
      });
      watcher.on('error', (error) => this.options.logger.warn({ err: error.message, dir }, 'queue spool watch failed; relying on periodic rescans'));
      watcher.unref();
      this.watchers.push(watcher);
    } catch (error) {
      this.options.logger.warn({ err: (error as Error).message, dir }, 'cannot watch the queue spool; relying on periodic rescans');
    }
  }

  private leaseOf(jobId: string, owner: string): Lease {
    const lease = this.index.leases.get(jobId);
    if (lease?.owner !== owner) throw new LeaseLostError(`lease on ${jobId} is not held by ${owner}`);
    return lease;
  }

  private parseJob(jobId: string): { messageId: string; domain: string } {
    const parsed = parseJobId(jobId);
    if (!parsed || !isMessageId(parsed.messageId)) throw new NotFoundError(`job ${jobId} not found`);
    return parsed;
  }

  private validFallbackId(id: string): boolean {
    return /^[0-9A-Z]{22}\.[0-9a-f]{16}$/.test(id);
  }

  /** Serialises read-modify-write of one message, in this process and across processes. */
  private locked<T>(messageId: string, task: () => Promise<T>): Promise<T> {
    return this.mutex.run(messageId, () => withFileLock(this.layout.lockFile(messageId), task));
  }

  private async readMeta(id: string): Promise<MessageRecord | undefined> {
    try {
      return await readJson<MessageRecord>(this.layout.metaFile(id));
    } catch (error) {
      this.options.logger.warn({ queueId: id, err: (error as Error).message }, 'unreadable queue entry skipped');
      return undefined;
    }
  }

  private async writeMeta(record: MessageRecord): Promise<void> {
    const id = record.id;
    // Counted before the rename, so its event can never arrive before the count.
    await writeFileAtomic(this.layout.tmp, this.layout.metaFile(id), JSON.stringify(record), true, {
      beforeRename: () => this.ownMetaWrites.set(id, (this.ownMetaWrites.get(id) ?? 0) + 1),
      renameFailed: () => {
        const pending = (this.ownMetaWrites.get(id) ?? 1) - 1;
        if (pending > 0) this.ownMetaWrites.set(id, pending);
        else this.ownMetaWrites.delete(id);
      },
    });
  }

  private async readFallback(id: string): Promise<FallbackItem | undefined> {
    try {
      return await readJson<FallbackItem>(this.layout.fallbackFile(id));
    } catch {
      return undefined;
    }
  }

  private async writeFallback(item: FallbackItem): Promise<void> {
    await writeFileAtomic(this.layout.tmp, this.layout.fallbackFile(item.id), JSON.stringify(item));
    this.index.setFallback(item);
  }

  private async removeFallback(id: string): Promise<void> {
    await removeFile(this.layout.fallbackFile(id));
    this.index.fallback.delete(id);
  }

  private async withFallback(id: string, task: (item: FallbackItem) => Promise<void>): Promise<void> {
    if (!this.validFallbackId(id)) throw new NotFoundError(`fallback item ${id} not found`);
    await this.locked(messageIdOfFallback(id), async () => {
      const item = await this.readFallback(id);
      if (!item) {
        this.index.fallback.delete(id);
        throw new NotFoundError(`fallback item ${id} not found`);
      }
      await task(item);
    });
  }

  private async readAllMeta(): Promise<MessageRecord[]> {
    const ids = (await fs.readdir(this.layout.meta)).map(idOfJsonName).filter((id): id is string => id !== undefined);
    const records = await Promise.all(ids.sort().map((id) => this.readMeta(id)));
    return records.filter((r): r is MessageRecord => r !== undefined);
  }

  private async readAllFallback(): Promise<FallbackItem[]> {
    const ids = (await fs.readdir(this.layout.fallback)).map(idOfJsonName).filter((id): id is string => id !== undefined);
    const items = await Promise.all(ids.map((id) => this.readFallback(id)));
    return items.filter((i): i is FallbackItem => i !== undefined).sort(byDiversion);
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
      this.index.add(record);
      return this.index.view(record);
    });
  }

  private async removeMessageFiles(id: string): Promise<void> {
    // Metadata first: a crash afterwards leaves only a body without metadata, which open() sets aside.
    await removeFile(this.layout.metaFile(id));
    await fs.rm(this.layout.bodyFile(id), { force: true });
    const prefix = `${id}.`;
    const items = (await fs.readdir(this.layout.fallback)).filter((n) => n.startsWith(prefix));
    await Promise.all(items.map((name) => fs.rm(this.layout.fallbackFile(idOfJsonName(name) ?? name), { force: true })));
    await Promise.all([fsyncDir(this.layout.bodies), fsyncDir(this.layout.fallback)]);
    for (const name of items) this.index.fallback.delete(idOfJsonName(name) ?? name);
    this.index.remove(id);
  }

  private async verifyClaim(jobId: string, owner: string, resumed: boolean): Promise<ClaimedJob | undefined> {
    const messageId = parseJobId(jobId)?.messageId ?? '';
    const record = await this.readMeta(messageId);
    const job = record?.jobs.find((j) => j.id === jobId);
    const lease = this.index.leases.get(jobId);
    if (!record || !job || !isClaimable(job) || lease?.owner !== owner) {
      if (lease?.owner === owner) this.index.leases.delete(jobId);
      if (record) this.index.add(record);
      else this.index.remove(messageId);
      return undefined;
    }
    const { jobs: _jobs, ...message } = record;
    return { job: withLease(job, lease), message, ...(resumed ? { resumed } : {}) };
  }

  /** Picks up changes other processes made (fs.watch events, plus a periodic full rescan). */
  private async refresh(): Promise<void> {
    if (Date.now() - this.lastRescan > RESCAN_INTERVAL_MS) {
      await this.rescan();
      return;
    }
    const messages = [...this.dirtyMessages];
    const items = [...this.dirtyFallback];
    this.dirtyMessages.clear();
    this.dirtyFallback.clear();
    await Promise.all([
      ...messages.filter(isMessageId).map(async (id) => {
        const check = await inspectMeta(this.layout, id);
        if ('record' in check) this.index.add(check.record);
        else if ('gone' in check) this.index.remove(id);
      }),
      ...items.map(async (id) => {
        const item = await this.readFallback(id);
        if (item) this.index.setFallback(item);
        else this.index.fallback.delete(id);
      }),
    ]);
  }

  /** Rebuilds the index from disk; at open, also sets damaged entries aside. */
  private async rescan(recovery?: Recovery): Promise<void> {
    this.lastRescan = Date.now();
    this.dirtyMessages.clear();
    this.ownMetaWrites.clear();
    this.dirtyFallback.clear();
    // Only messages known before the listing can be judged gone: newer ones may simply postdate it.
    const known = this.index.messageIds();
    const ids = (await fs.readdir(this.layout.meta)).map(idOfJsonName).filter((id): id is string => id !== undefined);
    const present = new Set<string>();
    for (const id of ids) {
      const check = await inspectMeta(this.layout, id);
      if ('record' in check) {
        present.add(id);
        this.index.add(check.record);
      } else if ('problem' in check) {
        if (recovery) {
          // Metadata is only ever replaced by rename, so a damaged record is never work in progress.
          await this.quarantine.move(this.layout.metaFile(id), check.problem);
          await this.quarantine.move(this.layout.bodyFile(id), check.problem);
        } else {
          this.options.logger.warn({ queueId: id, reason: check.problem }, 'damaged queue entry skipped (the relay sets it aside at its next start)');
        }
      }
    }
    for (const id of known) if (!present.has(id) && !(await exists(this.layout.metaFile(id)))) this.index.remove(id);
    if (recovery) await this.quarantine.orphanBodies(recovery, new Set(ids));
    this.index.fallback.clear();
    for (const item of await this.readAllFallback()) this.index.setFallback(item);
  }
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}

function byDiversion(a: FallbackItem, b: FallbackItem): number {
  return a.divertedAt - b.divertedAt || a.id.localeCompare(b.id);
}
