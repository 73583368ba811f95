import { promises as fs, watch, type FSWatcher } from 'node:fs';
import type { Logger } from '../../log/logger';
import { isFallbackId, isMessageId, messageIdOfFallback } from '../ids';
import { checkFallback } from '../schema';
import { DamagedEntryError, NotFoundError, type FallbackItem, type MessageRecord, type QuarantineCode, type QuarantineKind, type StoreObserver } from '../types';
import { allJobsFinal } from '../records';
import { fsyncDir, readJson, removeFile, sameFile, writeFileAtomic, type FileIdentity } from './durable';
import { idOfJsonName, SpoolLayout } from './layout';
import { KeyedMutex, releaseLockStages, spoolLockHolder, sweepLockStages, withFileLock } from './locks';
import { inspectMeta, Quarantine, type Recovery } from './recovery';
import { SpoolIndex } from './spool-index';

export interface FileStoreOptions {
  path: string;
  keepFinished: number;
  /** Longest a finished message's body is kept for unacknowledged fallback items (default 30 days). */
  fallbackRetention?: number;
  /** How long quarantined entries are kept before the sweep deletes them (default 30 days). */
  quarantineRetention?: number;
  /** The evidence log's folder (kept apart from the spool); default `evidence` beside the spool folder. */
  evidencePath?: string;
  /** A second copy of each daily anchor, one file per day; none when absent. */
  anchorCopy?: string | null;
  /** The evidence log's clock (epoch ms); Date.now when absent (tests set days with it). */
  now?: () => number;
  logger: Logger;
  /** Told of every entry set aside (metrics). */
  observer?: StoreObserver;
}

/** Full re-read of the spool, for changes fs.watch missed (network file systems, overflowed events). */
const RESCAN_INTERVAL_MS = 60_000;
/** Debris younger than this may still be in use by a writer when no relay holds the spool. */
const DEBRIS_AGE_MS = 10 * 60_000;
/** Metadata files this process wrote that are kept in memory (insertion order: the oldest are dropped first). */
const WRITTEN_META_LIMIT = 2048;

/**
 * The shared core of the embedded spool (layout.ts) under every role (queue.ts, admin.ts, fallback.ts,
 * cache.ts, retention.ts): reading and writing records durably, per-message locks and the in-memory index.
 * Every state change that matters is written to a temp file, fsynced, renamed into place and its directory
 * fsynced. Job leases are memory-only (spool-index.ts). The relay and the admin CLI may use one spool at
 * once: every read-modify-write of a message holds its lock, and claims are checked against the metadata on disk.
 */
export class FileSpool {
  readonly layout: SpoolLayout;
  readonly index = new SpoolIndex();
  readonly quarantine: Quarantine;
  /**
   * Whether this process may set damaged entries aside: the relay holding the spool, or any process while no
   * relay runs. An admin command beside a running relay only skips them (the relay sets them aside).
   */
  private mayQuarantine = false;
  /** Ids already reported as damaged or unreadable, so a skipped entry is logged once, not on every read. */
  private readonly reported = new Set<string>();
  private readonly mutex = new KeyedMutex();
  /** Ids changed on disk (possibly by another process) since the index last saw them. */
  private readonly dirtyMessages = new Set<string>();
  private readonly dirtyFallback = new Set<string>();
  /**
   * Renames into meta/ this process made whose fs.watch event has not arrived yet. Each rename
   * raises one event; the index already holds what was written, so that echo is skipped instead
   * of re-reading the file. Another process's change raises its own event and is still read.
   */
  private readonly ownMetaWrites = new Map<string, number>();
  /**
   * The metadata this process last wrote for messages still in progress, with the identity of the file written.
   * A read whose stat still finds that very file (same inode, size and mtime: every write renames a new file into
   * place) uses the text in memory instead of opening and reading the file again. Another process's write (the
   * admin CLI) is a new file, so it is always read from disk.
   */
  private readonly writtenMeta = new Map<string, { text: string; identity: FileIdentity }>();
  private readonly watchers: FSWatcher[] = [];
  private lastRescan = 0;

  constructor(readonly options: FileStoreOptions) {
    this.layout = new SpoolLayout(options.path);
    this.quarantine = new Quarantine(this.layout, options.logger, options.observer);
  }

  async open(): Promise<void> {
    for (const dir of this.layout.folders()) await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const holder = await spoolLockHolder(this.layout.root);
    // Temp files and bodies without metadata may be a message being written right now, so only the relay
    // holding the spool lock treats them all as debris; with no relay running, only old ones; while another
    // process is the relay, none.
    const recovery: Recovery | undefined = holder === process.pid ? { olderThan: Infinity } : holder === undefined ? { olderThan: Date.now() - DEBRIS_AGE_MS } : undefined;
    this.mayQuarantine = recovery !== undefined;
    if (recovery) await this.quarantine.tempFiles(recovery);
    await sweepLockStages(this.layout.locks);
    await this.rescan(recovery);
    this.watch(this.layout.meta, this.dirtyMessages, this.ownMetaWrites);
    this.watch(this.layout.fallback, this.dirtyFallback);
  }

  async close(): Promise<void> {
    for (const watcher of this.watchers.splice(0)) watcher.close();
    await releaseLockStages([this.layout.locks]);
  }

  async ping(): Promise<void> {
    await fs.access(this.layout.meta);
  }

  /** Serialises read-modify-write of one message, in this process and across processes. */
  locked<T>(messageId: string, task: () => Promise<T>): Promise<T> {
    return this.mutex.run(messageId, () => withFileLock(this.layout.lockFile(messageId), task));
  }

  /**
   * The message's metadata, checked against the schema. A damaged record is set aside (when this process
   * may) and reads as missing (or throws DamagedEntryError with `throwIfDamaged`); an unreadable one stays in
   * place and reads as missing until it can be read.
   */
  async readMeta(id: string, options: { throwIfDamaged?: boolean } = {}): Promise<MessageRecord | undefined> {
    const written = this.writtenMeta.get(id);
    if (written !== undefined) {
      const stat = await fs.stat(this.layout.metaFile(id), { bigint: true }).catch(() => undefined);
      // Checked against the schema before it was written; a fresh object, since callers change what they read.
      if (stat !== undefined && sameFile(stat, written.identity)) return JSON.parse(written.text) as MessageRecord;
      this.writtenMeta.delete(id);
    }
    const check = await inspectMeta(this.layout, id);
    if ('record' in check) return check.record;
    if ('gone' in check) return undefined;
    if ('unreadable' in check) {
      this.reportOnce(id, () => this.options.logger.warn({ event: 'unreadable', queueId: id, reason: check.unreadable }, 'unreadable queue entry skipped; kept in place and read again later'));
      return undefined;
    }
    if (this.mayQuarantine) await this.quarantineFiles(id, 'message', check.code, check.problem);
    else this.reportOnce(id, () => this.options.logger.warn({ queueId: id, reason: check.problem }, 'damaged queue entry skipped (the relay sets it aside)'));
    if (options.throwIfDamaged) throw new DamagedEntryError(`message ${id}: ${check.problem}`);
    return undefined;
  }

  private reportOnce(id: string, log: () => void): void {
    if (this.reported.has(id)) return;
    this.reported.add(id);
    log();
  }

  /** Sets a message aside under its lock: metadata, body and fallback items, out of the index. */
  async quarantineMessage(id: string, kind: QuarantineKind, code: QuarantineCode, reason: string, jobId?: string): Promise<void> {
    if (!isMessageId(id)) return;
    await this.locked(id, () => this.quarantineFiles(id, kind, code, reason, jobId));
  }

  private async quarantineFiles(id: string, kind: QuarantineKind, code: QuarantineCode, reason: string, jobId?: string): Promise<void> {
    const prefix = `${id}.`;
    const items = (await fs.readdir(this.layout.fallback)).filter((n) => n.startsWith(prefix) && idOfJsonName(n) !== undefined);
    // Metadata first: if the moves stop half-way, what is left is a body without metadata, which open() sets aside.
    const files = [this.layout.metaFile(id), this.layout.bodyFile(id), ...items.map((n) => this.layout.fallbackFile(idOfJsonName(n)!))];
    await this.quarantine.setAside({ id, kind, code, reason, at: Date.now(), ...(jobId !== undefined ? { jobId } : {}) }, files);
    for (const name of items) this.index.fallback.delete(idOfJsonName(name)!);
    this.writtenMeta.delete(id);
    this.index.remove(id);
  }

  async writeMeta(record: MessageRecord): Promise<void> {
    const id = record.id;
    const text = JSON.stringify(record);
    let identity: FileIdentity | undefined;
    this.writtenMeta.delete(id);
    // Counted before the rename, so its event can never arrive before the count.
    await writeFileAtomic(this.layout.tmp, this.layout.metaFile(id), text, true, {
      written: (written) => (identity = written),
      beforeRename: () => this.ownMetaWrites.set(id, (this.ownMetaWrites.get(id) ?? 0) + 1),
      renameFailed: () => {
        const pending = (this.ownMetaWrites.get(id) ?? 1) - 1;
        if (pending > 0) this.ownMetaWrites.set(id, pending);
        else this.ownMetaWrites.delete(id);
      },
    });
    // A finished message is read again only by the sweep and admins: not worth the memory.
    if (identity !== undefined && !allJobsFinal(record)) {
      if (this.writtenMeta.size >= WRITTEN_META_LIMIT) this.writtenMeta.delete(this.writtenMeta.keys().next().value!);
      this.writtenMeta.set(id, { text, identity });
    }
  }

  async readFallback(id: string): Promise<FallbackItem | undefined> {
    let value: unknown;
    try {
      value = await readJson<unknown>(this.layout.fallbackFile(id));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== undefined) {
        this.reportOnce(id, () => this.options.logger.warn({ event: 'unreadable', itemId: id, reason: `fallback item cannot be read (${code})` }, 'unreadable fallback item skipped; kept in place'));
        return undefined;
      }
      return this.damagedFallback(id, 'invalid-json', 'fallback item is not valid JSON');
    }
    if (value === undefined) return undefined;
    const checked = checkFallback(value, id);
    if (!checked.ok) return this.damagedFallback(id, checked.code, checked.reason);
    return checked.value;
  }

  private async damagedFallback(id: string, code: QuarantineCode, reason: string): Promise<undefined> {
    if (this.mayQuarantine) {
      await this.quarantine.setAside({ id, kind: 'fallback', code, reason, at: Date.now() }, [this.layout.fallbackFile(id)]);
      this.index.fallback.delete(id);
    } else {
      this.reportOnce(id, () => this.options.logger.warn({ itemId: id, reason }, 'damaged fallback item skipped (the relay sets it aside)'));
    }
    return undefined;
  }

  async writeFallback(item: FallbackItem): Promise<void> {
    await writeFileAtomic(this.layout.tmp, this.layout.fallbackFile(item.id), JSON.stringify(item));
    this.index.setFallback(item);
  }

  async removeFallback(id: string): Promise<void> {
    await removeFile(this.layout.fallbackFile(id));
    this.index.fallback.delete(id);
  }

  /** Runs `task` on one fallback item under its message's lock; NotFoundError when there is no such item. */
  async withFallback(id: string, task: (item: FallbackItem) => Promise<void>): Promise<void> {
    if (!isFallbackId(id)) throw new NotFoundError(`fallback item ${id} not found`);
    await this.locked(messageIdOfFallback(id), async () => {
      const item = await this.readFallback(id);
      if (!item) {
        this.index.fallback.delete(id);
        throw new NotFoundError(`fallback item ${id} not found`);
      }
      await task(item);
    });
  }

  async readAllMeta(): Promise<MessageRecord[]> {
    const ids = (await fs.readdir(this.layout.meta)).map(idOfJsonName).filter((id): id is string => id !== undefined);
    const records = await Promise.all(ids.sort().map((id) => this.readMeta(id)));
    return records.filter((r): r is MessageRecord => r !== undefined);
  }

  async readAllFallback(): Promise<FallbackItem[]> {
    const ids = (await fs.readdir(this.layout.fallback)).map(idOfJsonName).filter((id): id is string => id !== undefined);
    const items = await Promise.all(ids.map((id) => this.readFallback(id)));
    return items.filter((i): i is FallbackItem => i !== undefined).sort(byDiversion);
  }

  async removeMessageFiles(id: string): Promise<void> {
    // Metadata first: a crash afterwards leaves only a body without metadata, which open() sets aside.
    await removeFile(this.layout.metaFile(id));
    this.writtenMeta.delete(id);
    await this.removeMessageBody(id);
    this.index.remove(id);
  }

  /** The body and fallback items of a message (an admin delete that keeps the record as evidence). */
  async removeMessageBody(id: string): Promise<void> {
    await fs.rm(this.layout.bodyFile(id), { force: true });
    const prefix = `${id}.`;
    const items = (await fs.readdir(this.layout.fallback)).filter((n) => n.startsWith(prefix));
    await Promise.all(items.map((name) => fs.rm(this.layout.fallbackFile(idOfJsonName(name) ?? name), { force: true })));
    await Promise.all([fsyncDir(this.layout.bodies), fsyncDir(this.layout.fallback)]);
    for (const name of items) this.index.fallback.delete(idOfJsonName(name) ?? name);
  }

  /** Picks up changes other processes made (fs.watch events, plus a periodic full rescan). */
  async refresh(): Promise<void> {
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
        else if ('problem' in check) await this.readMeta(id);
      }),
      ...items.map(async (id) => {
        const item = await this.readFallback(id);
        if (item) this.index.setFallback(item);
        else this.index.fallback.delete(id);
      }),
    ]);
  }

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
      const check = await inspectMeta(this.layout, id, { body: true });
      if ('record' in check) {
        present.add(id);
        this.index.add(check.record);
      } else if ('problem' in check) {
        if (recovery) {
          // Metadata is only ever replaced by rename, so a damaged record is never work in progress.
          await this.quarantineFiles(id, 'message', check.code, check.problem);
        } else {
          this.reportOnce(id, () => this.options.logger.warn({ queueId: id, reason: check.problem }, 'damaged queue entry skipped (the relay sets it aside at its next start)'));
        }
      } else if ('unreadable' in check) {
        present.add(id);
        this.reportOnce(id, () => this.options.logger.warn({ event: 'unreadable', queueId: id, reason: check.unreadable }, 'unreadable queue entry skipped; kept in place and read again later'));
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

export function byDiversion(a: FallbackItem, b: FallbackItem): number {
  return a.divertedAt - b.divertedAt || a.id.localeCompare(b.id);
}
