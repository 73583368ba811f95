import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../../log/logger';
import type { MessageRecord } from '../types';
import { fsyncDir, readJson } from './durable';
import type { SpoolLayout } from './layout';
import { pidAlive } from './locks';

/** Which debris open() may set aside: files last modified before `olderThan` (epoch ms; Infinity: all). */
export type Recovery = { olderThan: number };

export type MetaCheck = { record: MessageRecord } | { problem: string } | { gone: true };

/** Reads one metadata file and says whether it is a usable record. */
export async function inspectMeta(layout: SpoolLayout, id: string): Promise<MetaCheck> {
  let record: MessageRecord | undefined;
  try {
    record = await readJson<MessageRecord>(layout.metaFile(id));
  } catch {
    return { problem: 'metadata is not valid JSON' };
  }
  if (record === undefined) return { gone: true };
  if (typeof record !== 'object' || record === null || record.id !== id || !Array.isArray(record.jobs)) return { problem: 'metadata is not a queue record' };
  if (!record.bodyRemoved) {
    try {
      await fs.access(layout.bodyFile(id));
    } catch {
      // Deleting removes the metadata first, so a record still here without its body is damage, not a delete in progress.
      if ((await readJson<MessageRecord>(layout.metaFile(id)).catch(() => undefined)) === undefined) return { gone: true };
      return { problem: 'metadata without a body' };
    }
  }
  return { record };
}

export class Quarantine {
  constructor(
    private readonly layout: SpoolLayout,
    private readonly logger: Logger,
  ) {}

  /** Moves a damaged entry aside (never deletes it) and logs it once. */
  async move(file: string, reason: string): Promise<void> {
    const target = path.join(this.layout.quarantine, `${path.basename(path.dirname(file))}.${path.basename(file)}.${Date.now()}`);
    try {
      await fs.rename(file, target);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    await fsyncDir(this.layout.quarantine);
    this.logger.warn({ file: path.relative(this.layout.root, file), movedTo: path.relative(this.layout.root, target), reason }, 'damaged queue entry quarantined');
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
