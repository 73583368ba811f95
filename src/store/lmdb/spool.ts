import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../../log/logger';
import { SpoolLayout } from '../file/layout';
import { spoolLockHolder } from '../file/locks';
import { SpoolIndex } from '../file/spool-index';
import { isMessageId } from '../ids';
import { DamagedEntryError, type FallbackItem, type MessageRecord, type QuarantineCode, type QuarantineEntry, type QuarantineKind } from '../types';
import type { FileStoreOptions } from '../file/spool';
import { LmdbBodyFiles } from './body-files';
import { decodeFallback, decodeMessage, type Decoded } from './codec';
import { CHANGE_POLL_MS, LmdbChanges } from './changes';
import { envPath, LmdbEnv } from './env';
import { chunkRange, LmdbQuarantine } from './quarantine';
import { LmdbSlotMap } from './slot-map';

/** Spools whose slots a store of this process hands out (one per spool: a second store opened on it reads only). */
const allocators = new Set<string>();

/** The same options as the file store: the environment lives in `<path>/lmdb/`, the rest beside it. */
export type LmdbStoreOptions = FileStoreOptions;

/** A read inside a write transaction: the record, nothing, or damage (already set aside when this process may). */
export type TxnRead<T> = { value: T } | { gone: true } | { damaged: string; entry?: QuarantineEntry };

/**
 * The shared core of the LMDB store under every role: the environment, the in-memory index (schedule, leases,
 * finished messages, fallback hints; the same SpoolIndex as the file store, rebuilt at open by one scan) and the
 * quarantine. Every read-modify-write runs inside one write transaction (LMDB has one writer at a time, across
 * processes), so no file locks are needed. Leases live only in this process's memory, as in the file store.
 */
export class LmdbSpool {
  readonly layout: SpoolLayout;
  readonly index = new SpoolIndex();
  /** The message bodies in `<path>/lmdb-bodies/`: slab slots and files of their own (body-files.ts). */
  readonly bodyFiles: LmdbBodyFiles;
  env!: LmdbEnv;
  /** Which message's body is in which slab slot (slot-map.ts). */
  slots!: LmdbSlotMap;
  quarantine!: LmdbQuarantine;
  changes!: LmdbChanges;
  /**
   * Whether this process may set damaged entries aside and remove debris: the relay holding the spool lock, or
   * any process while no relay runs. An admin command beside a running relay only skips them.
   */
  mayClean = false;
  private readonly reported = new Set<string>();
  private lastRescan = 0;

  constructor(readonly options: LmdbStoreOptions) {
    this.layout = new SpoolLayout(options.path);
    this.bodyFiles = new LmdbBodyFiles(options.path);
  }

  get logger(): Logger {
    return this.options.logger;
  }

  async open(): Promise<void> {
    const l = this.layout;
    // Portal copies, cache and TLS-RPT counters stay files (their file implementations).
    // Bodies are in lmdb-bodies/: slab slots (made with the relay's first slot) and files (body-files.ts).
    for (const dir of [l.cache, l.locks, l.tmp, l.portal, l.portalItems, l.portalBlobs, l.portalTokens, l.portalEvents, l.tlsrpt, ...this.bodyFiles.folders()]) {
      await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    }
    const holder = await spoolLockHolder(l.root);
    this.mayClean = holder === process.pid || holder === undefined;
    await fs.mkdir(l.root, { recursive: true, mode: 0o700 });
    this.env = new LmdbEnv(l.root);
    this.slots = new LmdbSlotMap(this.env, this.bodyFiles, this.logger, (id) => this.bodyNeeded(id));
    this.quarantine = new LmdbQuarantine(this.env, this.bodyFiles, this.logger, this.options.observer);
    this.changes = new LmdbChanges(this.env, holder === process.pid);
    // The scan sees every change made so far: earlier notices are done with.
    await this.changes.startFrom();
    this.lastRescan = Date.now();
    await this.scan();
    // The relay alone hands out slab slots: a slot another process is writing into is never one it frees.
    if (holder === process.pid && !allocators.has(path.resolve(l.root))) {
      allocators.add(path.resolve(l.root));
      await this.slots.startAllocating();
    }
  }

  async close(): Promise<void> {
    if (this.bodyFiles.slabs.allocates) allocators.delete(path.resolve(this.layout.root));
    this.bodyFiles.slabs.close();
    await this.env.close();
  }

  /** Cheap liveness check: the environment answers a read and its folder is still there. */
  async ping(): Promise<void> {
    this.env.messages.get('0');
    await fs.access(envPath(this.layout.root));
  }

  /** One scan of the messages and fallback items: rebuilds the index; damaged entries and debris chunks go aside. */
  private async scan(): Promise<void> {
    const { env } = this;
    const damaged: Array<{ id: string; kind: 'message' | 'fallback'; code: QuarantineCode; reason: string }> = [];
    const ids = new Set<string>();
    for (const { key, value } of env.messages.getRange()) {
      ids.add(key);
      const decoded = decodeMessage(value, key);
      if ('value' in decoded) this.index.add(decoded.value);
      else if ('problem' in decoded) damaged.push({ id: key, kind: 'message', code: decoded.code, reason: decoded.problem });
    }
    for (const { key, value } of env.fallback.getRange()) {
      const decoded = decodeFallback(value, key);
      if ('value' in decoded) this.index.setFallback(decoded.value);
      else if ('problem' in decoded) damaged.push({ id: key, kind: 'fallback', code: decoded.code, reason: decoded.problem });
    }
    for (const d of damaged) {
      if (this.mayClean) await this.setAside({ id: d.id, kind: d.kind, code: d.code, reason: d.reason, at: Date.now() });
      else this.reportOnce(d.id, () => this.logger.warn({ queueId: d.id, reason: d.reason }, 'damaged queue entry skipped (the relay sets it aside)'));
    }
    if (this.mayClean) {
      await this.removeDebris(ids);
      await this.removeBodyFileDebris();
    }
  }

  /**
   * Body chunks with no record: an upload cut short by a crash. Only the process that may clean removes them (an
   * upload in progress is this very process's, and it has not started any yet); each id is checked again in the
   * transaction that removes it.
   */
  private async removeDebris(known: ReadonlySet<string>): Promise<void> {
    const { env } = this;
    const orphans = new Set<string>();
    for (const key of env.bodies.getKeys()) if (!known.has(key[0])) orphans.add(key[0]);
    if (orphans.size === 0) return;
    const removed = await env.write(() => {
      let count = 0;
      for (const id of orphans) {
        if (env.messages.get(id) !== undefined) continue;
        this.removeChunks(id);
        count++;
      }
      return count;
    });
    if (removed > 0) this.logger.warn({ event: 'debris-removed', count: removed }, 'body chunks without a record removed (an upload cut short)');
  }

  /**
   * Body files no record needs: an upload cut short by a crash, a file whose record was removed or lost its body
   * (a removal cut short), a kept file whose quarantine entry was purged. A file of a message set aside whose move
   * into kept/ was cut short is moved there now. Each record is read again just before its file goes.
   */
  private async removeBodyFileDebris(): Promise<void> {
    const { env, bodyFiles } = this;
    const quarantined = new Map<string, number>();
    const entries = new Set<string>();
    for (const [at, id] of env.quarantine.getKeys()) {
      quarantined.set(id, at);
      entries.add(`${at}-${id}`);
    }
    const unneeded: string[] = [];
    for (const id of this.slots.ids()) {
      if (this.bodyNeeded(id)) continue;
      const at = quarantined.get(id);
      if (at !== undefined && env.messages.get(id) === undefined) await this.slots.keep(at, id, this.quarantine.keptBodySize(at, id));
      else unneeded.push(id);
    }
    let removed = (await this.slots.release(unneeded)).length;
    for (const id of await bodyFiles.ids()) {
      env.root.resetReadTxn();
      const decoded = decodeMessage(env.messages.get(id), id);
      if ('problem' in decoded || ('value' in decoded && !decoded.value.bodyRemoved)) continue;
      const at = quarantined.get(id);
      if (at !== undefined && 'gone' in decoded) {
        await bodyFiles.keep(at, id);
        continue;
      }
      await bodyFiles.remove([id]);
      removed++;
    }
    const unkept = (await bodyFiles.keptEntries()).filter(([at, id]) => !entries.has(`${at}-${id}`));
    await bodyFiles.removeKept(unkept);
    removed += unkept.length;
    if (removed > 0) this.logger.warn({ event: 'debris-removed', count: removed }, 'bodies without a record removed (an upload or a removal cut short)');
  }

  /**
   * A message record read outside a transaction. A damaged one is set aside (when this process may) and reads as
   * missing, or throws DamagedEntryError with `throwIfDamaged`.
   */
  async readMessage(id: string, options: { throwIfDamaged?: boolean } = {}): Promise<MessageRecord | undefined> {
    const decoded = decodeMessage(this.env.messages.get(id), id);
    if ('value' in decoded) return decoded.value;
    if ('gone' in decoded) return undefined;
    await this.damaged(id, 'message', decoded);
    if (options.throwIfDamaged) throw new DamagedEntryError(`message ${id}: ${decoded.problem}`);
    return undefined;
  }

  async readFallback(id: string): Promise<FallbackItem | undefined> {
    const decoded = decodeFallback(this.env.fallback.get(id), id);
    if ('value' in decoded) return decoded.value;
    if ('problem' in decoded) await this.damaged(id, 'fallback', decoded);
    return undefined;
  }

  /** Inside a write transaction: the record, setting it aside there when damaged (announce the entry after the commit). */
  readMessageInTxn(id: string): TxnRead<MessageRecord> {
    return this.inTxn(id, 'message', decodeMessage(this.env.messages.get(id), id));
  }

  readFallbackInTxn(id: string): TxnRead<FallbackItem> {
    return this.inTxn(id, 'fallback', decodeFallback(this.env.fallback.get(id), id));
  }

  private inTxn<T>(id: string, kind: 'message' | 'fallback', decoded: Decoded<T>): TxnRead<T> {
    if (!('problem' in decoded)) return decoded;
    if (!this.mayClean) return { damaged: decoded.problem };
    const entry: QuarantineEntry = { id, kind, code: decoded.code, reason: decoded.problem, at: Date.now() };
    const moved = kind === 'message' ? this.quarantine.setAsideMessage(entry) : this.quarantine.setAsideFallback(entry);
    return { damaged: decoded.problem, ...(moved ? { entry: moved } : {}) };
  }

  /** After the commit of a transaction that met damage: logs what was set aside, or reports the skip once. */
  afterDamage(id: string, read: { damaged: string; entry?: QuarantineEntry }): void {
    if (read.entry) void this.forget(read.entry);
    else if (!this.mayClean) this.reportOnce(id, () => this.logger.warn({ queueId: id, reason: read.damaged }, 'damaged queue entry skipped (the relay sets it aside)'));
  }

  private async damaged(id: string, kind: 'message' | 'fallback', decoded: { problem: string; code: QuarantineCode }): Promise<void> {
    if (this.mayClean) await this.setAside({ id, kind, code: decoded.code, reason: decoded.problem, at: Date.now() });
    else this.reportOnce(id, () => this.logger.warn({ queueId: id, reason: decoded.problem }, 'damaged queue entry skipped (the relay sets it aside)'));
  }

  /** Sets an entry aside in its own transaction (idempotent: nothing left, nothing recorded). */
  async setAside(entry: QuarantineEntry): Promise<void> {
    const moved = await this.env.write(() => (entry.kind === 'fallback' ? this.quarantine.setAsideFallback(entry) : this.quarantine.setAsideMessage(entry)));
    if (moved) await this.forget(moved);
    else if (entry.kind === 'fallback') this.index.fallback.delete(entry.id);
    else this.index.remove(entry.id);
  }

  /** Public quarantineMessage: a whole message aside, out of every schedule. */
  async quarantineMessage(id: string, kind: QuarantineKind, code: QuarantineCode, reason: string, jobId?: string): Promise<void> {
    if (!isMessageId(id)) return;
    await this.setAside({ id, kind, code, reason, at: Date.now(), ...(jobId !== undefined ? { jobId } : {}) });
  }

  /**
   * After the commit that set an entry aside: announces it, drops it from the index and moves a message's body file
   * into kept/ (resolves once moved; a failed move is logged, and the next open by the relay finishes it).
   */
  private async forget(entry: QuarantineEntry): Promise<void> {
    this.quarantine.announce(entry);
    if (entry.kind === 'fallback') {
      this.index.fallback.delete(entry.id);
      return;
    }
    for (const itemId of [...this.index.fallback.keys()]) if (itemId.startsWith(`${entry.id}.`)) this.index.fallback.delete(itemId);
    this.index.remove(entry.id);
    await this.keepBody(entry.at, entry.id).catch((error: Error) => {
      this.logger.warn({ event: 'quarantine-body-file-failed', queueId: entry.id, err: error.message }, 'could not keep the body of a quarantined message in lmdb-bodies/kept');
    });
  }

  private reportOnce(id: string, log: () => void): void {
    if (this.reported.has(id)) return;
    this.reported.add(id);
    log();
  }

  /** After the commit that set a message aside: its body, in a slot or a file of its own, into kept/. */
  private async keepBody(at: number, id: string): Promise<void> {
    if (!(await this.slots.keep(at, id, this.quarantine.keptBodySize(at, id)))) await this.bodyFiles.keep(at, id);
  }

  /** Whether a message still needs its body, as last committed (a damaged record is assumed to). */
  private bodyNeeded(id: string): boolean {
    const decoded = decodeMessage(this.env.messages.get(id), id);
    return 'problem' in decoded || ('value' in decoded && !decoded.value.bodyRemoved);
  }

  /** Inside a write transaction: removes a message's body chunks. Its slot or file goes after the commit: removeBodies. */
  removeChunks(id: string): void {
    for (const key of [...this.env.bodies.getKeys(chunkRange(id))]) this.env.bodies.removeSync(key);
  }

  /**
   * After the commit that removed bodies (or their records): the slots or body files of those messages, when they
   * have one. A failed removal is logged and left as debris for the relay's next open.
   */
  async removeBodies(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    // A body is in a slot or a file, never both: each removal is tried only where the body is.
    const inSlot = new Set(ids.filter((id) => this.slots.slotOf(id) !== undefined));
    const slotted = [...inSlot];
    const filed = ids.filter((id) => !inSlot.has(id));
    await this.slots.release(slotted).catch((error: Error) => {
      this.logger.warn({ event: 'body-slot-release-failed', count: slotted.length, err: error.message }, 'could not zero body slots (zeroed at the next open)');
    });
    await this.bodyFiles.remove(filed).catch((error: Error) => {
      this.logger.warn({ event: 'body-file-removal-failed', count: filed.length, err: error.message }, 'could not delete body files (removed at the next open)');
    });
  }

  /**
   * Picks up what other processes changed, at most about once a second. The relay reads the notices admin writes
   * left in the change log (cheap); any other process (an admin command, a reader beside the relay) has no notice of
   * the relay's own writes, so it re-reads the messages and fallback items into its index instead.
   */
  async refresh(force = false): Promise<void> {
    await this.slots.drainFreed();
    if (!this.changes.consumer) {
      if (!force && Date.now() - this.lastRescan < CHANGE_POLL_MS) return;
      this.lastRescan = Date.now();
      this.rescanIndex();
      return;
    }
    const notices = this.changes.poll(force);
    if (notices.ids.length === 0) return;
    for (const id of notices.ids) {
      if (id.startsWith('f:')) {
        const itemId = id.slice(2);
        const item = await this.readFallback(itemId);
        if (item) this.index.setFallback(item);
        else this.index.fallback.delete(itemId);
        continue;
      }
      if (!isMessageId(id)) continue;
      const record = await this.readMessage(id);
      if (record) {
        this.index.add(record);
        for (const itemId of [...this.index.fallback.keys()]) if (itemId.startsWith(`${id}.`) && this.env.fallback.get(itemId) === undefined) this.index.fallback.delete(itemId);
      } else this.index.remove(id);
    }
    await notices.done();
  }

  /** Not the relay: the index rebuilt from what is stored now (damaged entries skipped; the relay sets them aside). */
  private rescanIndex(): void {
    const { env, index } = this;
    env.root.resetReadTxn();
    const present = new Set<string>();
    for (const { key, value } of env.messages.getRange()) {
      present.add(key);
      // A damaged record keeps what the index knew of it: the read that meets it (a claim) sets it aside.
      const decoded = decodeMessage(value, key);
      if ('value' in decoded) index.add(decoded.value);
    }
    for (const id of index.messageIds()) if (!present.has(id)) index.remove(id);
    index.fallback.clear();
    for (const { key, value } of env.fallback.getRange()) {
      const decoded = decodeFallback(value, key);
      if ('value' in decoded) index.setFallback(decoded.value);
    }
  }
}

export function byDiversion(a: FallbackItem, b: FallbackItem): number {
  return a.divertedAt - b.divertedAt || a.id.localeCompare(b.id);
}
