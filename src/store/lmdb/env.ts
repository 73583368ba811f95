import path from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';

/** A key of the change log: when, which process, and a per-process counter (unique across processes). */
export type ChangeKey = [number, number, number];

/**
 * The LMDB environment of the embedded store, `<queue.path>/lmdb/`, and its sub-databases:
 *   messages    message id -> MessageRecord as JSON text (checked against the schema on every read)
 *   bodies      [message id, chunk number] -> body bytes in chunks of BODY_CHUNK bytes (the last one shorter): only
 *               in spools written before every body became a file in `<queue.path>/lmdb-bodies/` (body-files.ts);
 *               read, quarantined and removed as before
 *   fallback    fallback item id -> FallbackItem as JSON text
 *   quarantine  [set aside at, id] -> what was set aside and why (JSON text), kept chunks in `kept`
 *   kept        [set aside at, message id, chunk number] -> the body chunks of a quarantined message of such a
 *               spool (a body file moves to lmdb-bodies/kept/ instead)
 *   changes     ChangeKey -> the id an admin write changed (`f:` prefix: a fallback item), for the relay to re-read
 *   inflight    job id -> '' while a claimed job's result is unrecorded (inflight.ts)
 *   slots       message id -> the slab slot holding its body ("<slot size>:<index>", body-slabs.ts); a body with no
 *               entry here is a file of its own (or, in old spools, chunks)
 *   freedSlots  slot -> '' for a slot another process zeroed and unmapped, until the relay (which alone hands out
 *               slots) takes it back
 *
 * Sync commits stay as lmdb-js defaults them (no noSync, no noMetaSync). With overlappingSync (the Linux
 * default) a commit's promise resolves once it is visible, before it is flushed: durable() waits for both.
 */
export class LmdbEnv {
  readonly root: RootDatabase;
  readonly messages: Database<string, string>;
  readonly bodies: Database<Buffer, [string, number]>;
  readonly fallback: Database<string, string>;
  readonly quarantine: Database<string, [number, string]>;
  readonly kept: Database<Buffer, [number, string, number]>;
  readonly changes: Database<string, ChangeKey>;
  readonly inflight: Database<string, string>;
  readonly slots: Database<string, string>;
  readonly freedSlots: Database<string, string>;

  constructor(spoolPath: string) {
    this.root = open({ path: envPath(spoolPath), compression: false, cache: false, mapSize: MAP_RESERVE });
    this.messages = this.root.openDB<string, string>({ name: 'messages', encoding: 'string' });
    this.bodies = this.root.openDB<Buffer, [string, number]>({ name: 'bodies', encoding: 'binary' });
    this.fallback = this.root.openDB<string, string>({ name: 'fallback', encoding: 'string' });
    this.quarantine = this.root.openDB<string, [number, string]>({ name: 'quarantine', encoding: 'string' });
    this.kept = this.root.openDB<Buffer, [number, string, number]>({ name: 'kept', encoding: 'binary' });
    this.changes = this.root.openDB<string, ChangeKey>({ name: 'changes', encoding: 'string' });
    this.inflight = this.root.openDB<string, string>({ name: 'inflight', encoding: 'string' });
    this.slots = this.root.openDB<string, string>({ name: 'slots', encoding: 'string' });
    this.freedSlots = this.root.openDB<string, string>({ name: 'freedSlots', encoding: 'string' });
  }

  /** Resolves with the commit's value once that commit (and every earlier one) is flushed to disk. */
  async durable<T>(commit: Promise<T>): Promise<T> {
    const value = await commit;
    await this.flushed();
    return value;
  }

  /** Runs `action` inside one write transaction (it sees the latest data of every process) and waits for the flush. */
  write<T>(action: () => T): Promise<T> {
    return this.durable(this.root.transaction(action));
  }

  /** Resolves when the last commit is on disk. */
  flushed(): PromiseLike<boolean> {
    return this.root.flushed;
  }

  close(): Promise<void> {
    return this.root.close();
  }
}

/** Where the environment lives inside the spool folder. */
export function envPath(spoolPath: string): string {
  return path.join(spoolPath, 'lmdb');
}

/**
 * Address space reserved for the map at open (not disk: the file grows as data comes). lmdb-js otherwise starts at
 * 128 KiB and doubles the map as the file grows, keeping every earlier mapping for its readers, so the same pages
 * could be resident more than once (10,000 × 10 KB queued, `npm run bench -- --mode queued`: file-backed RSS
 * 137.0 → 128.3 MiB, of which about 40 MiB is node's own binary).
 * A spool bigger than this still works: lmdb-js grows the map past it.
 */
export const MAP_RESERVE = 2 ** 36;

/** The end of a range over every chunk of one body ([id, 0] to [id, MAX_CHUNK]). */
export const MAX_CHUNK = Number.MAX_SAFE_INTEGER;
