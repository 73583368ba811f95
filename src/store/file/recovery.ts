import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../../log/logger';
import { checkMessage } from '../schema';
import type { MessageRecord, QuarantineCode, QuarantineEntry, StoreObserver } from '../types';
import { fsyncDir, readJson } from './durable';
import type { SpoolLayout } from './layout';
import { pidAlive } from './locks';

/** Which debris open() may set aside: files last modified before `olderThan` (epoch ms; Infinity: all). */
export type Recovery = { olderThan: number };

/**
 * What one metadata file is: a usable record, damage (quarantined by whoever may), gone, or unreadable. An
 * unreadable file (a permission error) is not damage: its content may be intact and an operator can fix the
 * owner or mode, so it stays in place, is skipped, and is read again at the next rescan.
 */
export type MetaCheck = { record: MessageRecord } | { problem: string; code: QuarantineCode } | { gone: true } | { unreadable: string };

/**
 * Reads one metadata file and says whether it is a usable record. With `body` (the full rescan), a record whose
 * body is missing is damage too; ordinary reads skip that check, because the sweep removes a body just before
 * it marks the record `bodyRemoved`, and a read in between must not take that for damage.
 */
export async function inspectMeta(layout: SpoolLayout, id: string, options: { body?: boolean } = {}): Promise<MetaCheck> {
  let record: unknown;
  try {
    record = await readJson<unknown>(layout.metaFile(id));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM' || code === 'EISDIR' || code === 'EIO') return { unreadable: `metadata cannot be read (${code})` };
    return { problem: 'metadata is not valid JSON', code: 'invalid-json' };
  }
  if (record === undefined) return { gone: true };
  const checked = checkMessage(record, id);
  if (!checked.ok) return { problem: checked.reason, code: checked.code };
  if (options.body && !checked.value.bodyRemoved) {
    try {
      await fs.access(layout.bodyFile(id));
    } catch {
      // Deleting removes the metadata first, so a record still here without its body is damage, not a delete in progress.
      if ((await readJson<MessageRecord>(layout.metaFile(id)).catch(() => undefined)) === undefined) return { gone: true };
      return { problem: 'metadata without a body', code: 'body-missing' };
    }
  }
  return { record: checked.value };
}

/** One line of quarantine.jsonl: the entry and the names of its files in quarantine/. */
type IndexLine = QuarantineEntry & { files: string[] };

export class Quarantine {
  constructor(
    private readonly layout: SpoolLayout,
    private readonly logger: Logger,
    private readonly observer?: StoreObserver,
  ) {}

  /**
   * Moves the files of one damaged entry aside (never deletes them), records why in quarantine.jsonl and logs
   * it once. Files already gone are skipped; when none was left to move, nothing is recorded.
   */
  async setAside(entry: QuarantineEntry, files: string[]): Promise<void> {
    const moved: string[] = [];
    for (const file of files) {
      const name = `${path.basename(path.dirname(file))}.${path.basename(file)}.${entry.at}`;
      try {
        await fs.rename(file, path.join(this.layout.quarantine, name));
        moved.push(name);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
    if (moved.length === 0) return;
    await fsyncDir(this.layout.quarantine);
    const line: IndexLine = { ...entry, files: moved };
    await fs.appendFile(this.layout.quarantineIndex, `${JSON.stringify(line)}\n`, { mode: 0o600 });
    this.logger.warn(
      { event: 'quarantined', id: entry.id, kind: entry.kind, code: entry.code, reason: entry.reason, files: moved, ...(entry.jobId !== undefined ? { jobId: entry.jobId } : {}) },
      'damaged queue entry quarantined',
    );
    this.observer?.quarantined(entry);
  }

  /** Moves one leftover file aside (never deletes it) and logs it once. */
  async move(file: string, reason: string): Promise<void> {
    await this.setAside({ id: path.basename(file), kind: 'file', code: 'debris', reason, at: Date.now() }, [file]);
  }

  /**
   * Entries in quarantine/, oldest first: those recorded in quarantine.jsonl whose files are still there, and
   * files an older version set aside without a record (reason unknown, time from the name).
   */
  async list(): Promise<Array<QuarantineEntry & { files: string[] }>> {
    const present = new Set(await fs.readdir(this.layout.quarantine).catch(() => [] as string[]));
    const out: IndexLine[] = [];
    const claimed = new Set<string>();
    for (const line of await this.readIndex()) {
      const files = line.files.filter((f) => present.has(f));
      if (files.length === 0) continue;
      for (const f of files) claimed.add(f);
      out.push({ ...line, files });
    }
    for (const name of present) {
      if (claimed.has(name)) continue;
      const at = Number(name.split('.').at(-1));
      out.push({ id: name, kind: 'file', code: 'debris', reason: 'set aside without a recorded reason', at: Number.isFinite(at) ? at : 0, files: [name] });
    }
    return out.sort((a, b) => a.at - b.at || a.id.localeCompare(b.id));
  }

  /** Deletes entries set aside before `before` and rewrites the record of what is left. */
  async purge(before: number): Promise<QuarantineEntry[]> {
    const entries = await this.list();
    const purged: QuarantineEntry[] = [];
    const kept: IndexLine[] = [];
    for (const entry of entries) {
      if (entry.at >= before) {
        kept.push(entry);
        continue;
      }
      for (const name of entry.files) await fs.rm(path.join(this.layout.quarantine, name), { force: true });
      const { files: _files, ...rest } = entry;
      purged.push(rest);
    }
    if (purged.length === 0) return purged;
    await fsyncDir(this.layout.quarantine);
    const text = kept.map((e) => `${JSON.stringify(e)}\n`);
    const temp = `${this.layout.quarantineIndex}.${process.pid}.tmp`;
    await fs.writeFile(temp, text.join(''), { mode: 0o600 });
    await fs.rename(temp, this.layout.quarantineIndex);
    return purged;
  }

  private async readIndex(): Promise<IndexLine[]> {
    const text = await fs.readFile(this.layout.quarantineIndex, 'utf8').catch(() => '');
    return text.split('\n').flatMap((line) => {
      if (line.trim() === '') return [];
      try {
        const parsed = JSON.parse(line) as IndexLine;
        return Array.isArray(parsed.files) ? [parsed] : [];
      } catch {
        return [];
      }
    });
  }

  /** Unfinished temp files, except those of a live writer (temp names carry the writer's PID). */
  async tempFiles(recovery: Recovery): Promise<void> {
    for (const name of await fs.readdir(this.layout.tmp)) {
      const file = path.join(this.layout.tmp, name);
      const writer = Number(name.split('.').at(-3));
      if (writer !== process.pid && Number.isInteger(writer) && pidAlive(writer)) continue;
      if (await isDebris(file, recovery)) await this.move(file, 'unfinished temporary file');
    }
  }

  /** Bodies whose metadata never arrived (a crash between the two renames of enqueue). */
  async orphanBodies(recovery: Recovery, metaIds: ReadonlySet<string>): Promise<void> {
    for (const id of await fs.readdir(this.layout.bodies)) {
      if (metaIds.has(id)) continue;
      const file = this.layout.bodyFile(id);
      if (await isDebris(file, recovery)) await this.move(file, 'body without metadata');
    }
  }
}

async function isDebris(file: string, recovery: Recovery): Promise<boolean> {
  if (recovery.olderThan === Infinity) return true;
  const stat = await fs.stat(file).catch(() => undefined);
  return stat !== undefined && stat.mtimeMs < recovery.olderThan;
}
