import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fsyncDir, unlinkIfPresent } from '../file/durable';
import { isMessageId } from '../ids';
import { BodySlabs } from './body-slabs';

/**
 * The message bodies beside the environment (why: queue.ts, StoredBody), read with read() instead of through
 * LMDB's map, and gone from the spool once unlinked or zeroed:
 *   lmdb-bodies/slabs/<slot size>     bodies of up to 256 KiB written by the relay, one slot each (body-slabs.ts)
 *   lmdb-bodies/<message id>          any other body, byte for byte (0600)
 *   lmdb-bodies/kept/<at>-<message id>  the body of a message quarantined at <at>, until the quarantine is purged
 * A file is written and flushed before its record commits and removed only after the record's change commits, so a
 * crash leaves a file without a record (debris, removed at the next open by the process that may clean), never a
 * record without its body.
 */
export class LmdbBodyFiles {
  readonly dir: string;
  readonly keptDir: string;
  readonly slabs: BodySlabs;

  constructor(spoolPath: string) {
    this.dir = bodyFilesPath(spoolPath);
    this.keptDir = path.join(this.dir, 'kept');
    this.slabs = new BodySlabs(path.join(this.dir, 'slabs'));
  }

  /** The folders made at open (slabs/ comes with the relay's first slot). */
  folders(): string[] {
    return [this.dir, this.keptDir];
  }

  file(id: string): string {
    return path.join(this.dir, id);
  }

  keptFile(at: number, id: string): string {
    return path.join(this.keptDir, `${at}-${id}`);
  }

  /** Creates the file of a new body (never over an existing one). */
  create(id: string): Promise<fs.FileHandle> {
    return fs.open(this.file(id), 'wx', 0o600);
  }

  /** Makes the new file's name survive a power cut (after its data was flushed and it was closed). */
  synced(): Promise<void> {
    return fsyncDir(this.dir);
  }

  /** The body file opened for reading, or undefined when there is none. */
  async open(id: string): Promise<fs.FileHandle | undefined> {
    try {
      return await fs.open(this.file(id), 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  /**
   * Removes body files (a missing one is fine). Not fsynced: a removal lost to a power cut leaves debris, which
   * the next open removes.
   */
  async remove(ids: Iterable<string>): Promise<void> {
    for (const id of ids) await unlinkIfPresent(this.file(id));
  }

  /** After the commit that set a message aside: its body file, when it has one, into kept/. */
  async keep(at: number, id: string): Promise<boolean> {
    try {
      await fs.rename(this.file(id), this.keptFile(at, id));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw error;
    }
    await fsyncDir(this.keptDir);
    await fsyncDir(this.dir);
    return true;
  }

  /** After the commit that set aside a message whose body is in a slot: a copy of the body into kept/. */
  async writeKept(at: number, id: string, bytes: Buffer): Promise<void> {
    const file = await fs.open(this.keptFile(at, id), 'w', 0o600);
    try {
      await file.writeFile(bytes);
      await file.datasync();
    } finally {
      await file.close();
    }
    await fsyncDir(this.keptDir);
  }

  /** After the commit that purged quarantine entries: their kept body files. */
  async removeKept(entries: Iterable<[number, string]>): Promise<void> {
    for (const [at, id] of entries) await unlinkIfPresent(this.keptFile(at, id));
  }

  /** The message ids that have a body file. */
  async ids(): Promise<string[]> {
    return (await fs.readdir(this.dir).catch(() => [] as string[])).filter(isMessageId);
  }

  /** The kept body files, as [set aside at, message id]. */
  async keptEntries(): Promise<Array<[number, string]>> {
    const out: Array<[number, string]> = [];
    for (const name of await fs.readdir(this.keptDir).catch(() => [] as string[])) {
      const match = /^(\d+)-(.+)$/.exec(name);
      if (match && isMessageId(match[2]!)) out.push([Number(match[1]), match[2]!]);
    }
    return out;
  }
}

/** Where the body files live inside the spool folder. */
export function bodyFilesPath(spoolPath: string): string {
  return path.join(spoolPath, 'lmdb-bodies');
}
