import type { Logger } from '../../log/logger';
import type { QuarantineEntry, StoreObserver } from '../types';
import type { LmdbBodyFiles } from './body-files';
import { MAX_CHUNK, type LmdbEnv } from './env';

/**
 * One quarantine value: the entry and what was kept of it (record and item texts; body chunks live in `kept`, a
 * body file in lmdb-bodies/kept/<at>-<id>).
 */
interface Kept {
  entry: QuarantineEntry;
  record?: string;
  fallback?: Record<string, string>;
  chunks?: number;
}

/**
 * Damaged entries set aside inside the LMDB environment, never deleted until purged: the record text as it was,
 * its fallback items and its body chunks move out of the live sub-databases in the same transaction that
 * records why, so a message is either live or quarantined, never half of each. A body file moves into
 * lmdb-bodies/kept/ after that transaction commits (the spool's forget; the relay's next open finishes a move cut
 * short) and is deleted after the purge commits.
 */
export class LmdbQuarantine {
  constructor(
    private readonly env: LmdbEnv,
    private readonly files: LmdbBodyFiles,
    private readonly logger: Logger,
    private readonly observer?: StoreObserver,
  ) {}

  /**
   * Inside a write transaction: moves a message (record, fallback items, body chunks) aside. Returns the entry,
   * or undefined when nothing of it was left (already gone or quarantined). Call announce() after the commit.
   */
  setAsideMessage(entry: QuarantineEntry): QuarantineEntry | undefined {
    const { env } = this;
    const id = entry.id;
    const record = env.messages.get(id);
    const fallback: Record<string, string> = {};
    for (const { key, value } of [...env.fallback.getRange(fallbackRange(id))]) fallback[key] = value;
    let chunks = 0;
    // Collected before any change: the range is not walked while it is being changed.
    for (const { key, value } of [...env.bodies.getRange(chunkRange(id))]) {
      env.kept.putSync([entry.at, id, key[1]], Buffer.from(value));
      env.bodies.removeSync(key);
      chunks++;
    }
    if (record === undefined && Object.keys(fallback).length === 0 && chunks === 0) return undefined;
    for (const itemId of Object.keys(fallback)) env.fallback.removeSync(itemId);
    if (record !== undefined) env.messages.removeSync(id);
    const kept: Kept = { entry, ...(record !== undefined ? { record } : {}), fallback, chunks };
    env.quarantine.putSync([entry.at, id], JSON.stringify(kept));
    return entry;
  }

  /** Inside a write transaction: sets one fallback item aside. */
  setAsideFallback(entry: QuarantineEntry): QuarantineEntry | undefined {
    const text = this.env.fallback.get(entry.id);
    if (text === undefined) return undefined;
    this.env.fallback.removeSync(entry.id);
    const kept: Kept = { entry, fallback: { [entry.id]: text } };
    this.env.quarantine.putSync([entry.at, entry.id], JSON.stringify(kept));
    return entry;
  }

  /** Logs an entry set aside (once: only the transaction that moved it returns it) and tells the observer. */
  announce(entry: QuarantineEntry): void {
    this.logger.warn(
      { event: 'quarantined', id: entry.id, kind: entry.kind, code: entry.code, reason: entry.reason, ...(entry.jobId !== undefined ? { jobId: entry.jobId } : {}) },
      'damaged queue entry quarantined',
    );
    this.observer?.quarantined(entry);
  }

  /** The body size in the record set aside with a message (undefined when there was none or it is unreadable). */
  keptBodySize(at: number, id: string): number | undefined {
    try {
      const kept = JSON.parse(this.env.quarantine.get([at, id]) ?? 'null') as Kept | null;
      const size = kept?.record === undefined ? undefined : (JSON.parse(kept.record) as { size?: unknown }).size;
      return typeof size === 'number' && Number.isSafeInteger(size) && size >= 0 ? size : undefined;
    } catch {
      return undefined;
    }
  }

  /** Entries oldest first (the keys start with the time they were set aside). */
  list(): QuarantineEntry[] {
    const out: QuarantineEntry[] = [];
    for (const { key, value } of this.env.quarantine.getRange()) out.push(entryOf(key, value));
    return out;
  }

  count(): number {
    return this.env.quarantine.getKeysCount();
  }

  /** Deletes entries set aside before `before` with whatever was kept of them (body files after the commit). */
  async purge(before: number): Promise<QuarantineEntry[]> {
    const { env } = this;
    const keys: Array<[number, string]> = [];
    const purged = await env.write(() => {
      keys.length = 0;
      const entries: QuarantineEntry[] = [];
      for (const { key, value } of [...env.quarantine.getRange({ end: [before] })]) {
        entries.push(entryOf(key, value));
        keys.push(key);
        for (const chunk of [...env.kept.getKeys({ start: [key[0], key[1], 0], end: [key[0], key[1], MAX_CHUNK] })]) env.kept.removeSync(chunk);
        env.quarantine.removeSync(key);
      }
      return entries;
    });
    // A file left by a failed removal has no entry any more: the relay's next open removes it as debris.
    await this.files.removeKept(keys).catch((error: Error) => {
      this.logger.warn({ event: 'quarantine-body-file-failed', err: error.message }, 'could not delete the body file of a purged quarantine entry');
    });
    return purged;
  }
}

function entryOf(key: [number, string], value: string): QuarantineEntry {
  try {
    return (JSON.parse(value) as Kept).entry;
  } catch {
    return { id: key[1], kind: 'file', code: 'debris', reason: 'set aside without a readable record', at: key[0] };
  }
}

/** Every body chunk key of a message. */
export function chunkRange(id: string): { start: [string, number]; end: [string, number] } {
  return { start: [id, 0], end: [id, MAX_CHUNK] };
}

/** Every fallback item id of a message (`<message id>.<hex>`: '/' sorts right after '.'). */
export function fallbackRange(id: string): { start: string; end: string } {
  return { start: `${id}.`, end: `${id}/` };
}
