import { hash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../../log/logger';
import { chainEvidence, evidenceDay, parseEvidenceLine, pruneBase, recipientDomain, sealDay } from '../evidence-chain';
import type { EvidenceAnchor, EvidenceBase, EvidencePruneResult, EvidenceQuery, EvidenceRecord, EvidenceRecordInput } from '../model';
import type { EvidenceLog } from '../roles';
import { fsyncDir, readJson, writeFileAtomic } from './durable';
import { releaseLockStages, sweepLockStages, withFileLock } from './locks';
import type { FileStoreOptions } from './spool';

/*
 * The file store's evidence log, in its own folder (evidence.path, default `evidence` beside the spool):
 *   segments/YYYY-MM-DD.jsonl  the records appended that UTC day, one JSON record per line, append-only (O_APPEND)
 *   anchors/YYYY-MM-DD.json    the day's seal, written once the day is over (temp + fsync + rename + dir fsync);
 *                              the same file also goes to evidence.anchorCopy when set
 *   base.json                  where the kept log starts after a prune (the last removed day's anchor)
 *   index/<kind>/<hh>.tsv      look-up index, kind = queue | message | recipient | domain, hh = first two hex digits
 *                              of sha256(key): "key<TAB>day" once per key and day, so a look-up reads one small
 *                              bucket and then only the listed days' segments. Derived data: the segments are the
 *                              truth, and the newest days are re-indexed when a process first writes.
 *   index/indexed.json         how far the index is known complete (day, byte offset, inode, boot id): a process's
 *                              first write re-reads the segments only after it; written at most every half minute
 *                              and only after the index lines before it, ignored after a reboot (the index is not
 *                              fsynced, so a power loss may have lost lines before it). A process gathers its index
 *                              lines in memory and appends them when it writes the mark (or before a look-up, a
 *                              prune or close), one append per bucket file for many records; a kill loses only
 *                              lines after the mark on disk, which the next process re-derives from the segments
 *   append.lock                cross-process lock (withFileLock) held around every batch, seal and prune, so the
 *                              relay and the admin CLI appending at once still form one chain
 *   tmp/                       files being written
 * Appends are group-committed: a batch takes every call that arrived until it holds the lock and has checked the
 * head, and calls arriving while it is written and fsynced join the next one. The newest day's segment stays open between
 * batches (O_APPEND, so another process's appends are never overwritten); it is opened again when the path names
 * another file (a new day, a file replaced by hand) and closed by close().
 */

const DAY_RE = /^\d{4}-\d{2}-\d{2}$/;
const SEGMENT_RE = /^(\d{4}-\d{2}-\d{2})\.jsonl$/;
const ANCHOR_RE = /^(\d{4}-\d{2}-\d{2})\.json$/;
const DAY_MS = 86_400_000;
const TAIL_WINDOW = 64 * 1024;
/** Keys already indexed for the current day; past this many the set starts over (a repeat line is harmless). */
const SEEN_LIMIT = 200_000;
/** How many of the newest days are re-indexed when a process first writes (a crash may leave the index behind). */
const REINDEX_DAYS = 2;
/** Index bucket files appended to at once. */
const INDEX_WRITERS = 8;
/**
 * How often the index mark is written while appending (a kill re-reads at most this much of the log at the next
 * start). Each write appends to every bucket file that gathered lines (up to 1024, an open, write and close each),
 * so the longer the interval, the more lines share those calls.
 */
const INDEX_MARK_INTERVAL_MS = 30_000;
const INDEX_MARK_FILE = 'indexed.json';
/** Index lines gathered in memory past which they are appended before the mark is due (some 3 MB). */
const INDEX_BUFFER_LINES = 32_768;

type IndexKind = 'queue' | 'message' | 'recipient' | 'domain';
const INDEX_KINDS: readonly IndexKind[] = ['queue', 'message', 'recipient', 'domain'];

interface Pending {
  inputs: readonly EvidenceRecordInput[];
  resolve(records: EvidenceRecord[]): void;
  reject(error: unknown): void;
}

interface HeadCache {
  day: string;
  size: number;
  ino: number;
  record: EvidenceRecord;
}

/** Counters for measurements and tests. */
export interface EvidenceLogStats {
  batches: number;
  fsyncs: number;
  records: number;
  /** Segment bytes read to check the index (a process's first write, or after another process wrote). */
  reindexedBytes: number;
}

/** Every record before byte `size` of day `day`'s segment (inode `ino`), and of the days before it, has its index lines. */
interface IndexMark {
  day: string;
  size: number;
  ino: number;
}

/** Tuning for tests. */
export interface FileEvidenceLogTuning {
  /** Least time between two writes of the index mark while appending. */
  indexMarkIntervalMs?: number;
}

let bootIdPromise: Promise<string | undefined> | undefined;
/** This boot of the machine (Linux); undefined elsewhere, and then a mark from disk is never trusted. */
function bootId(): Promise<string | undefined> {
  bootIdPromise ??= fs.readFile('/proc/sys/kernel/random/boot_id', 'utf8').then(
    (text) => text.trim() || undefined,
    () => undefined,
  );
  return bootIdPromise;
}

/**
 * The complete lines of a segment from byte `start` (a line start) to `end`, streamed, with the offset just past
 * each line: a trailing piece without its newline was never acknowledged and is not returned.
 */
async function* segmentLines(handle: fs.FileHandle, start: number, end: number): AsyncGenerator<{ line: string; next: number }> {
  if (end <= start) return;
  let carry: Buffer | undefined;
  let offset = start;
  for await (const chunk of handle.createReadStream({ start, end: end - 1, autoClose: false }) as AsyncIterable<Buffer>) {
    const data = carry ? Buffer.concat([carry, chunk]) : chunk;
    let from = 0;
    for (let newline = data.indexOf(0x0a); newline >= 0; newline = data.indexOf(0x0a, from)) {
      offset += newline + 1 - from;
      yield { line: data.toString('utf8', from, newline), next: offset };
      from = newline + 1;
    }
    carry = from < data.length ? data.subarray(from) : undefined;
  }
}

function indexKeys(record: EvidenceRecord): Array<[IndexKind, string]> {
  const keys: Array<[IndexKind, string]> = [];
  if (record.queueId) keys.push(['queue', record.queueId]);
  if (record.messageId) keys.push(['message', record.messageId]);
  if (record.recipient) {
    keys.push(['recipient', record.recipient.toLowerCase()]);
    const domain = recipientDomain(record.recipient);
    if (domain) keys.push(['domain', domain]);
  }
  return keys;
}

function bucketName(key: string): string {
  return `${hash('sha256', key, 'hex').slice(0, 2)}.tsv`;
}

async function readText(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

async function listMatching(dir: string, pattern: RegExp): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return names
    .map((name) => pattern.exec(name)?.[1])
    .filter((day): day is string => day !== undefined)
    .sort();
}

/** Complete lines only: a trailing piece without its newline was never acknowledged. */
function completeLines(text: string): string[] {
  const end = text.lastIndexOf('\n');
  return end < 0 ? [] : text.slice(0, end).split('\n');
}

export class FileEvidenceLog implements EvidenceLog {
  readonly root: string;
  readonly stats: EvidenceLogStats = { batches: 0, fsyncs: 0, records: 0, reindexedBytes: 0 };
  private readonly segments: string;
  private readonly anchors: string;
  private readonly index: string;
  private readonly tmp: string;
  private readonly lockFile: string;
  private readonly copy: string | null;
  private readonly now: () => number;
  private readonly logger: Logger;
  private pending: Pending[] = [];
  private flushing = false;
  private head: HeadCache | undefined;
  private ready: Promise<void> | undefined;
  private seenDay = '';
  private readonly seen = new Set<string>();
  /** How far this process knows the index to be complete (undefined: not known, re-read from the mark on disk). */
  private indexed: IndexMark | undefined;
  private markWrittenAt = 0;
  private readonly markIntervalMs: number;
  /** Index lines not yet appended: bucket file (kind/hh.tsv under index/) -> lines. Only changed or appended under the lock. */
  private indexBuffer = new Map<string, string[]>();
  private indexBufferLines = 0;
  /** The newest day's segment, kept open for appending while the path still names it. */
  private segment: { day: string; ino: number; handle: fs.FileHandle } | undefined;

  constructor(options: FileStoreOptions, tuning: FileEvidenceLogTuning = {}) {
    this.markIntervalMs = tuning.indexMarkIntervalMs ?? INDEX_MARK_INTERVAL_MS;
    this.root = options.evidencePath ?? path.join(path.dirname(options.path), 'evidence');
    this.segments = path.join(this.root, 'segments');
    this.anchors = path.join(this.root, 'anchors');
    this.index = path.join(this.root, 'index');
    this.tmp = path.join(this.root, 'tmp');
    this.lockFile = path.join(this.root, 'append.lock');
    this.copy = options.anchorCopy ?? null;
    this.now = options.now ?? Date.now;
    this.logger = options.logger;
  }

  appendEvidence(records: readonly EvidenceRecordInput[]): Promise<EvidenceRecord[]> {
    if (records.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.pending.push({ inputs: records, resolve, reject });
      this.startBatch();
    });
  }

  async *queryEvidence(query: EvidenceQuery): AsyncIterable<EvidenceRecord> {
    // The segment folder's listing only: a look-up reads no anchor and no day it does not need.
    const base = await this.evidenceBase();
    let days = (await this.segmentDays()).filter((d) => base === null || d > base.prunedThrough);
    if (query.from !== undefined) {
      const first = evidenceDay(query.from - DAY_MS);
      days = days.filter((d) => d >= first);
    }
    if (query.to !== undefined) {
      // A record's day is when it was logged, at or just after `at`.
      const last = evidenceDay(query.to + DAY_MS);
      days = days.filter((d) => d <= last);
    }
    const lookups: Array<[IndexKind, string]> = [];
    if (query.queueId !== undefined) lookups.push(['queue', query.queueId]);
    if (query.messageId !== undefined) lookups.push(['message', query.messageId]);
    if (query.recipient !== undefined) lookups.push(['recipient', query.recipient.toLowerCase()]);
    if (query.domain !== undefined) lookups.push(['domain', query.domain.toLowerCase()]);
    if (lookups.length > 0) {
      await this.prepare()
        .then(() => (this.indexBufferLines > 0 ? withFileLock(this.lockFile, () => this.flushIndexLocked()) : undefined))
        .catch((error: unknown) =>
          this.logger.warn({ event: 'evidence-index-check-failed', err: (error as Error).message }, 'could not check the evidence index; look-ups may miss the newest records'),
        );
      for (const [kind, key] of lookups) {
        const listed = await this.indexedDays(kind, key);
        days = days.filter((d) => listed.has(d));
      }
    }
    const recipient = query.recipient?.toLowerCase();
    const domain = query.domain?.toLowerCase();
    const sender = query.sender?.toLowerCase();
    const kinds = query.kinds === undefined ? undefined : new Set(query.kinds);
    let left = query.limit ?? Infinity;
    if (left <= 0) return;
    for (const day of days) {
      for (const line of await this.readEvidenceDay(day)) {
        const r = parseEvidenceLine(line);
        if (!r) continue;
        if (query.from !== undefined && !(r.at >= query.from)) continue;
        if (query.to !== undefined && !(r.at < query.to)) continue;
        if (query.queueId !== undefined && r.queueId !== query.queueId) continue;
        if (query.messageId !== undefined && r.messageId !== query.messageId) continue;
        if (recipient !== undefined && r.recipient?.toLowerCase() !== recipient) continue;
        if (domain !== undefined && (r.recipient === null || recipientDomain(r.recipient) !== domain)) continue;
        if (sender !== undefined && (r.sender === null || r.sender.toLowerCase() !== sender)) continue;
        if (kinds !== undefined && !kinds.has(r.kind)) continue;
        yield r;
        if (--left <= 0) return;
      }
    }
  }

  async evidenceDays(): Promise<string[]> {
    const [segments, anchors] = await Promise.all([this.segmentDays(), this.evidenceAnchors()]);
    const base = await this.evidenceBase();
    return [...new Set([...segments, ...anchors.map((a) => a.day)])].filter((d) => base === null || d > base.prunedThrough).sort();
  }

  async readEvidenceDay(day: string): Promise<string[]> {
    if (!DAY_RE.test(day)) return [];
    const text = await readText(this.segmentFile(day));
    return text === undefined ? [] : completeLines(text);
  }

  async evidenceAnchors(): Promise<EvidenceAnchor[]> {
    const base = await this.evidenceBase();
    const days = (await listMatching(this.anchors, ANCHOR_RE)).filter((d) => base === null || d > base.prunedThrough);
    const anchors: EvidenceAnchor[] = [];
    for (const day of days) {
      const anchor = await readJson<EvidenceAnchor>(this.anchorFile(day)).catch(() => undefined);
      // An unreadable anchor is listed by its day only, so verify reports it instead of skipping it.
      anchors.push(anchor ?? ({ day, firstSeq: 0, lastSeq: 0, count: 0, firstPrevHash: '', lastHash: '', sealedAt: 0, prevAnchorHash: '', hash: '' } satisfies EvidenceAnchor));
    }
    return anchors;
  }

  async evidenceBase(): Promise<EvidenceBase | null> {
    return (await readJson<EvidenceBase>(path.join(this.root, 'base.json'))) ?? null;
  }

  async evidenceHead(): Promise<EvidenceRecord | undefined> {
    const days = await this.segmentDays();
    for (let i = days.length - 1; i >= 0; i--) {
      const tail = await this.readTail(days[i]!, false);
      if (tail.line !== undefined) return parseEvidenceLine(tail.line);
    }
    return undefined;
  }

  async sealEvidence(now?: number): Promise<EvidenceAnchor[]> {
    await this.prepare();
    return withFileLock(this.lockFile, () => this.sealLocked(now ?? this.now()));
  }

  async pruneEvidence(beforeDay: string): Promise<EvidencePruneResult> {
    if (!DAY_RE.test(beforeDay)) throw new Error(`not a day (YYYY-MM-DD): ${beforeDay}`);
    await this.prepare();
    return withFileLock(this.lockFile, () => this.pruneLocked(beforeDay));
  }

  /**
   * Appends the index lines still in memory (with the mark after them) and closes the open segment. The log stays
   * usable: the next write opens what it needs again.
   */
  async close(): Promise<void> {
    // Batches in flight finish first: they use the open segment and the buffer.
    while (this.flushing) await new Promise((resolve) => setImmediate(resolve));
    if (this.indexBufferLines > 0 && this.indexed !== undefined) {
      const mark = this.indexed;
      await withFileLock(this.lockFile, () => this.writeIndexMark(mark)).catch((error: unknown) =>
        this.logger.warn({ event: 'evidence-index-failed', err: (error as Error).message }, 'could not add to the evidence index; the next process re-reads the newest records'),
      );
    }
    await this.closeSegment();
    await releaseLockStages([this.root]);
  }

  // ---- writing

  private startBatch(): void {
    if (this.flushing || this.pending.length === 0) return;
    this.flushing = true;
    void this.writeBatch().finally(() => {
      this.flushing = false;
      this.startBatch();
    });
  }

  /**
   * Writes what is pending as one batch. The batch is taken as late as it can be: under the lock, once the head is
   * checked, so every append that arrived while the lock was taken and the segment looked at shares this fsync
   * (no timer: nothing waits that could have been written).
   */
  private async writeBatch(): Promise<void> {
    const waiting = this.pending.length;
    let batch: Pending[] | undefined;
    const take = (): readonly EvidenceRecordInput[] => {
      batch = this.pending.splice(0);
      return batch.length === 1 ? batch[0]!.inputs : batch.flatMap((p) => p.inputs);
    };
    try {
      await this.prepare();
      const stored = await withFileLock(this.lockFile, () => this.appendLocked(take));
      let offset = 0;
      for (const p of batch!) {
        p.resolve(offset === 0 && p.inputs.length === stored.length ? stored : stored.slice(offset, offset + p.inputs.length));
        offset += p.inputs.length;
      }
    } catch (error) {
      this.head = undefined;
      await this.closeSegment();
      // Failed before the batch was taken: the appends that were waiting then fail, later ones get their own try.
      for (const p of batch ?? this.pending.splice(0, waiting)) p.reject(error);
    }
  }

  /** Appends the records `take` hands over (called once the head is known); returns them as stored. */
  private async appendLocked(take: () => readonly EvidenceRecordInput[]): Promise<EvidenceRecord[]> {
    const head = await this.headLocked(evidenceDay(this.now()));
    const inputs = take();
    // Read after the batch is taken, so no record is logged before the time its caller set.
    const now = this.now();
    // Never log before the head (another process's clock may run a little ahead): the chain's days only grow.
    const loggedAt = Math.max(now, head?.loggedAt ?? 0);
    const day = evidenceDay(loggedAt);
    if (head !== undefined && head.day < day) await this.sealLocked(loggedAt);
    const base = head === undefined ? await this.evidenceBase() : null;
    const previous = head ?? (base === null ? undefined : { seq: base.lastSeq, hash: base.lastHash });
    const records = chainEvidence(previous, inputs, loggedAt);
    const file = this.segmentFile(day);
    const text = records.map((r) => `${JSON.stringify(r)}\n`).join('');
    // headLocked has just checked that the path still names the file at this.head (same inode, same size), so
    // when the segment kept open is that file, it is appended to and its new size known without a stat.
    const cached = this.head;
    let stat: { size: number; ino: number };
    if (this.segment !== undefined && cached !== undefined && cached.day === day && this.segment.day === day && this.segment.ino === cached.ino) {
      await this.segment.handle.appendFile(text);
      await this.segment.handle.sync();
      stat = { size: cached.size + Buffer.byteLength(text), ino: cached.ino };
    } else {
      await this.closeSegment();
      const isNew = head?.day !== day && (await fs.stat(file).catch(() => undefined)) === undefined;
      const handle = await fs.open(file, 'a', 0o600);
      try {
        await handle.appendFile(text);
        await handle.sync();
        stat = await handle.stat();
      } catch (error) {
        await handle.close();
        throw error;
      }
      this.segment = { day, ino: stat.ino, handle };
      if (isNew) await fsyncDir(this.segments);
    }
    this.stats.batches++;
    this.stats.fsyncs++;
    this.stats.records += records.length;
    this.head = { day, size: stat.size, ino: stat.ino, record: records[records.length - 1]! };
    try {
      this.writeIndex(records);
      // Under the lock, so the batch sits right before the file's new end; anything else written since this
      // process last knew the index complete (another process's records, a new day) is checked now.
      const mark = this.indexed;
      const batchStart = stat.size - Buffer.byteLength(text);
      if (mark !== undefined && mark.day === day && mark.ino === stat.ino && mark.size === batchStart) {
        this.indexed = { day, size: stat.size, ino: stat.ino };
        if (Date.now() - this.markWrittenAt >= this.markIntervalMs || this.indexBufferLines >= INDEX_BUFFER_LINES) await this.writeIndexMark(this.indexed);
      } else {
        await this.reindexLocked();
      }
    } catch (error) {
      // The records are durable; only the derived index is behind: checked again before the next write.
      this.dropIndexBuffer();
      this.seen.clear();
      this.ready = undefined;
      this.indexed = undefined;
      await fs.rm(path.join(this.index, INDEX_MARK_FILE), { force: true }).catch(() => undefined);
      this.logger.warn({ event: 'evidence-index-failed', err: (error as Error).message }, 'could not add to the evidence index; it is checked again before the next write');
    }
    return records;
  }

  /** The chain's head, read again only when the newest segment changed since this process last saw it. */
  private async headLocked(today: string): Promise<EvidenceRecord | undefined> {
    const cached = this.head;
    if (cached !== undefined && cached.day === today) {
      const stat = await fs.stat(this.segmentFile(today)).catch(() => undefined);
      if (stat !== undefined && stat.size === cached.size && stat.ino === cached.ino) return cached.record;
    }
    this.head = undefined;
    const days = await this.segmentDays();
    for (let i = days.length - 1; i >= 0; i--) {
      const day = days[i]!;
      const tail = await this.readTail(day, true);
      if (tail.line === undefined) continue;
      const record = parseEvidenceLine(tail.line);
      if (record === undefined || typeof record.seq !== 'number' || typeof record.hash !== 'string') {
        throw new Error(`the last record of evidence segment ${day} is damaged; nothing can be chained to it (run sealgate evidence verify)`);
      }
      this.head = { day, size: tail.size, ino: tail.ino, record };
      return record;
    }
    return undefined;
  }

  /**
   * The last complete line of a day's segment. With `repair` (only under the lock, so no write is in flight), a
   * trailing piece without its newline is what a crash left of a batch that was never acknowledged: cut off.
   */
  private async readTail(day: string, repair: boolean): Promise<{ line?: string; size: number; ino: number }> {
    const file = this.segmentFile(day);
    let handle;
    try {
      handle = await fs.open(file, repair ? 'r+' : 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { size: 0, ino: 0 };
      throw error;
    }
    try {
      const { size: fullSize, ino } = await handle.stat();
      let size = fullSize;
      let window = TAIL_WINDOW;
      for (;;) {
        const start = Math.max(0, size - window);
        const buffer = Buffer.alloc(size - start);
        if (buffer.length > 0) await handle.read(buffer, 0, buffer.length, start);
        let end = buffer.length;
        if (end > 0 && buffer[end - 1] !== 0x0a) {
          const lastNewline = buffer.lastIndexOf(0x0a);
          if (lastNewline < 0 && start > 0) {
            window *= 2;
            continue;
          }
          end = lastNewline + 1;
          if (repair) {
            const keep = start + end;
            this.logger.warn({ event: 'evidence-torn-tail', day, bytes: size - keep }, 'evidence segment ended in a partial record (a write cut short by a crash, never acknowledged); cut it off');
            await handle.truncate(keep);
            await handle.sync();
            size = keep;
            continue;
          }
        }
        if (end === 0) return { size, ino };
        const previousNewline = end >= 2 ? buffer.lastIndexOf(0x0a, end - 2) : -1;
        if (previousNewline < 0 && start > 0) {
          window *= 2;
          continue;
        }
        return { line: buffer.subarray(previousNewline + 1, end - 1).toString('utf8'), size, ino };
      }
    } finally {
      await handle.close();
    }
  }

  private async firstRecord(day: string): Promise<EvidenceRecord | undefined> {
    const handle = await fs.open(this.segmentFile(day), 'r');
    try {
      const { size } = await handle.stat();
      let window = TAIL_WINDOW;
      for (;;) {
        const buffer = Buffer.alloc(Math.min(window, size));
        await handle.read(buffer, 0, buffer.length, 0);
        const newline = buffer.indexOf(0x0a);
        if (newline >= 0) return parseEvidenceLine(buffer.subarray(0, newline).toString('utf8'));
        if (buffer.length >= size) return undefined;
        window *= 2;
      }
    } finally {
      await handle.close();
    }
  }

  private async sealLocked(now: number): Promise<EvidenceAnchor[]> {
    const today = evidenceDay(now);
    const base = await this.evidenceBase();
    const anchors = await this.evidenceAnchors();
    const sealed = new Set(anchors.map((a) => a.day));
    let previousHash = anchors[anchors.length - 1]?.hash ?? base?.anchorHash;
    const written: EvidenceAnchor[] = [];
    for (const day of await this.segmentDays()) {
      if (day >= today || sealed.has(day) || (base !== null && day <= base.prunedThrough)) continue;
      const first = await this.firstRecord(day);
      const tail = await this.readTail(day, false);
      const last = tail.line === undefined ? undefined : parseEvidenceLine(tail.line);
      if (first === undefined || last === undefined) continue;
      const anchor = sealDay(first, last, previousHash, now);
      await this.writeDurable('anchors', `${day}.json`, `${JSON.stringify(anchor, null, 2)}\n`);
      previousHash = anchor.hash;
      written.push(anchor);
    }
    return written;
  }

  private async pruneLocked(beforeDay: string): Promise<EvidencePruneResult> {
    await this.flushIndexLocked();
    await this.closeSegment();
    const now = this.now();
    const today = evidenceDay(now);
    await this.sealLocked(now);
    const head = await this.headLocked(today);
    const base = await this.evidenceBase();
    // The newest day always stays, so the chain's head can still be read and appended to.
    const removed = (await this.evidenceAnchors()).filter((a) => a.day < beforeDay && a.day < today && a.day !== head?.day);
    if (removed.length === 0) return { days: [], records: 0, anchors: [], base };
    const newBase = pruneBase(removed[removed.length - 1]!, now);
    // The base first: from then on the removed days are outside the log even if the removal is cut short.
    await this.writeDurable('', 'base.json', `${JSON.stringify(newBase, null, 2)}\n`);
    const gone = new Set((await this.segmentDays()).filter((d) => d <= newBase.prunedThrough));
    for (const a of removed) gone.add(a.day);
    await this.dropIndexDays(newBase.prunedThrough);
    for (const day of gone) {
      await fs.rm(this.segmentFile(day), { force: true });
      await fs.rm(this.anchorFile(day), { force: true });
    }
    await fsyncDir(this.segments);
    await fsyncDir(this.anchors);
    return { days: removed.map((a) => a.day), records: removed.reduce((n, a) => n + a.count, 0), anchors: removed, base: newBase };
  }

  /** Writes a file of the evidence folder atomically and durably, and its copy under anchorCopy when set. */
  private async writeDurable(folder: string, name: string, text: string): Promise<void> {
    await writeFileAtomic(this.tmp, path.join(this.root, folder, name), text);
    if (this.copy !== null) {
      await fs.mkdir(this.copy, { recursive: true, mode: 0o700 });
      await writeFileAtomic(this.copy, path.join(this.copy, name), text);
    }
  }

  // ---- index

  private async indexedDays(kind: IndexKind, key: string): Promise<Set<string>> {
    const text = await readText(path.join(this.index, kind, bucketName(key)));
    const days = new Set<string>();
    if (text === undefined) return days;
    const wanted = `${encodeURIComponent(key)}\t`;
    for (const line of text.split('\n')) if (line.startsWith(wanted)) days.add(line.slice(wanted.length));
    return days;
  }

  /** Gathers the records' index lines in memory (appended by flushIndexLocked before the mark moves past them). */
  private writeIndex(records: readonly EvidenceRecord[]): void {
    for (const record of records) {
      if (record.day !== this.seenDay || this.seen.size > SEEN_LIMIT) {
        this.seen.clear();
        this.seenDay = record.day;
      }
      for (const [kind, key] of indexKeys(record)) {
        const seenKey = `${kind}\t${key}`;
        if (this.seen.has(seenKey)) continue;
        this.seen.add(seenKey);
        const bucket = `${kind}/${bucketName(key)}`;
        const line = `${encodeURIComponent(key)}\t${record.day}\n`;
        const lines = this.indexBuffer.get(bucket);
        if (lines === undefined) this.indexBuffer.set(bucket, [line]);
        else lines.push(line);
        this.indexBufferLines++;
      }
    }
  }

  /** Appends the gathered index lines (under the lock: a prune rewrites bucket files). */
  private async flushIndexLocked(): Promise<void> {
    if (this.indexBufferLines === 0) return;
    const lines = this.indexBuffer;
    this.indexBuffer = new Map();
    this.indexBufferLines = 0;
    // Parallel appends to distinct files (different buckets never share a line).
    const pending = [...lines];
    const worker = async () => {
      for (let next = pending.pop(); next !== undefined; next = pending.pop()) await fs.appendFile(path.join(this.index, next[0]), next[1].join(''), { mode: 0o600 });
    };
    await Promise.all(Array.from({ length: Math.min(INDEX_WRITERS, pending.length) }, worker));
  }

  /**
   * Adds what the index misses for the newest days (a crash between a batch's fsync and its index lines), reading the
   * segments as a stream and only after the point the index is known complete to (this process's, or the mark on disk).
   */
  private async reindexLocked(): Promise<void> {
    // Lines still in memory first, so the bucket files read below hold them and none is appended twice.
    await this.flushIndexLocked();
    const days = (await this.segmentDays()).slice(-REINDEX_DAYS);
    const mark = this.indexed ?? (await this.readIndexMark());
    const wanted = new Map<string, Set<string>>();
    let end: IndexMark = { day: '', size: 0, ino: 0 };
    for (const day of days) {
      if (mark !== undefined && day < mark.day) continue;
      let handle: fs.FileHandle;
      try {
        handle = await fs.open(this.segmentFile(day), 'r');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw error;
      }
      try {
        const { size, ino } = await handle.stat();
        const start = mark !== undefined && mark.day === day && mark.ino === ino && mark.size <= size ? mark.size : 0;
        let through = start;
        for await (const { line, next } of segmentLines(handle, start, size)) {
          through = next;
          const record = parseEvidenceLine(line);
          if (!record || record.day !== day) continue;
          for (const [kind, key] of indexKeys(record)) {
            const file = path.join(this.index, kind, bucketName(key));
            let set = wanted.get(file);
            if (!set) wanted.set(file, (set = new Set()));
            set.add(`${encodeURIComponent(key)}\t${day}`);
          }
        }
        this.stats.reindexedBytes += size - start;
        end = { day, size: through, ino };
      } finally {
        await handle.close();
      }
    }
    let added = 0;
    for (const [file, entries] of wanted) {
      const have = new Set((await readText(file))?.split('\n') ?? []);
      const missing = [...entries].filter((e) => !have.has(e));
      if (missing.length === 0) continue;
      added += missing.length;
      await fs.appendFile(file, missing.map((e) => `${e}\n`).join(''), { mode: 0o600 });
    }
    if (added > 0) this.logger.warn({ event: 'evidence-index-repaired', entries: added }, 'evidence index was behind its segments (after a crash); added the missing entries');
    // With no segment read, what was known still holds.
    if (end.day === '' && mark !== undefined) end = mark;
    this.indexed = end;
    await this.writeIndexMark(end);
  }

  /** The mark on disk, when it was written since this machine booted (the index lines before it are not fsynced). */
  private async readIndexMark(): Promise<IndexMark | undefined> {
    const boot = await bootId();
    if (boot === undefined) return undefined;
    const saved = await readJson<Partial<IndexMark> & { boot?: unknown }>(path.join(this.index, INDEX_MARK_FILE)).catch(() => undefined);
    if (!saved || saved.boot !== boot || typeof saved.day !== 'string' || typeof saved.size !== 'number' || typeof saved.ino !== 'number') return undefined;
    return { day: saved.day, size: saved.size, ino: saved.ino };
  }

  /** Only ever called under the lock, after the index lines before the mark were written. */
  private async writeIndexMark(mark: IndexMark): Promise<void> {
    await this.flushIndexLocked();
    this.markWrittenAt = Date.now();
    const boot = await bootId();
    if (boot === undefined) return;
    await writeFileAtomic(this.tmp, path.join(this.index, INDEX_MARK_FILE), JSON.stringify({ ...mark, boot }), false);
  }

  /** Rewrites the index buckets without the lines of days up to `through`. */
  private async dropIndexDays(through: string): Promise<void> {
    for (const kind of INDEX_KINDS) {
      const dir = path.join(this.index, kind);
      for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
        if (!name.endsWith('.tsv')) continue;
        const file = path.join(dir, name);
        const lines = completeLines((await readText(file)) ?? '');
        const kept = lines.filter((line) => line.slice(line.lastIndexOf('\t') + 1) > through);
        if (kept.length === lines.length) continue;
        await writeFileAtomic(this.tmp, file, kept.map((l) => `${l}\n`).join(''));
      }
    }
  }

  // ---- folders

  /** Once per process, before its first write: folders, a torn tail cut off, the newest days' index checked. */
  private prepare(): Promise<void> {
    this.ready ??= (async () => {
      let indexed = true;
      for (const dir of [this.segments, this.anchors, this.tmp]) await fs.mkdir(dir, { recursive: true, mode: 0o700 });
      await sweepLockStages(this.root);
      await withFileLock(this.lockFile, async () => {
        await this.headLocked(evidenceDay(this.now()));
        // The index is derived: a failure here leaves look-ups behind, never the log itself.
        try {
          for (const kind of INDEX_KINDS) await fs.mkdir(path.join(this.index, kind), { recursive: true, mode: 0o700 });
          await this.reindexLocked();
        } catch (error) {
          indexed = false;
          this.logger.warn({ event: 'evidence-index-failed', err: (error as Error).message }, 'could not check the evidence index; look-ups may miss the newest records');
        }
      });
      // Checked again before the next write until it works.
      if (!indexed) this.ready = undefined;
    })().catch((error: unknown) => {
      this.ready = undefined;
      throw error;
    });
    return this.ready;
  }

  private dropIndexBuffer(): void {
    this.indexBuffer = new Map();
    this.indexBufferLines = 0;
  }

  private async closeSegment(): Promise<void> {
    const open = this.segment;
    this.segment = undefined;
    await open?.handle.close().catch(() => undefined);
  }

  private segmentDays(): Promise<string[]> {
    return listMatching(this.segments, SEGMENT_RE);
  }

  private segmentFile(day: string): string {
    return path.join(this.segments, `${day}.jsonl`);
  }

  private anchorFile(day: string): string {
    return path.join(this.anchors, `${day}.json`);
  }
}
