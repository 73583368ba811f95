import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { messageIdOfFallback, parseJobId } from '../ids';
import type { FallbackItem, MessageRecord } from '../types';
import { jobIdOfMarker } from '../file/inflight';
import { FileSpool, type FileStoreOptions } from '../file/spool';

/** What a store offers to take over the messages of an embedded file spool. */
export interface SpoolImporter {
  /**
   * Stores the record as it is (jobs, states, evidence), its body when it still has one, and its fallback items,
   * durably, in one step. A message already stored under that id is left as it is ('present'): a migration cut off
   * after the import and before the file spool's copy was removed.
   * `inflightJobs` are jobs the file store's last relay was delivering when it stopped (possible duplicates).
   */
  importMessage(record: MessageRecord, body: Readable | undefined, fallback: readonly FallbackItem[], inflightJobs: readonly string[]): Promise<'imported' | 'present'>;
}

export interface SpoolMigration {
  imported: number;
  /** Already in the new store from an earlier, interrupted migration; their file copies were removed now. */
  alreadyPresent: number;
  fallbackItems: number;
}

/** True when `root` holds file-spool metadata: one directory read, so an lmdb start without an old spool pays nothing. */
export async function hasFileSpool(root: string): Promise<boolean> {
  const names = await fs.readdir(path.join(root, 'meta')).catch(() => [] as string[]);
  return names.some((name) => name.endsWith('.json'));
}

/**
 * Moves every message of the file spool at `options.path` into `importer`, then removes its files, message by
 * message: import first (durable), removal after, so a kill at any moment loses nothing and a re-run finishes the
 * job. The file spool is opened as a relay start would open it, so its temp files and damaged entries are set aside
 * into its quarantine/ folder first (left there for the operator). Portal copies, cache entries and TLS-RPT counters
 * stay where they are: the lmdb store keeps those in the same files.
 * Only the process that holds the spool lock (or any process while no relay runs) may call this.
 */
export async function migrateFileSpool(options: FileStoreOptions, importer: SpoolImporter): Promise<SpoolMigration> {
  const result: SpoolMigration = { imported: 0, alreadyPresent: 0, fallbackItems: 0 };
  if (!(await hasFileSpool(options.path))) return result;
  const spool = new FileSpool(options);
  await spool.open();
  try {
    const fallbackOf = groupBy(await spool.readAllFallback(), (item) => messageIdOfFallback(item.id));
    const inflightOf = groupBy(await inflightJobs(options.path), (jobId) => parseJobId(jobId)?.messageId ?? '');
    for (const record of await spool.readAllMeta()) {
      const items = fallbackOf.get(record.id) ?? [];
      const body = await bodyOf(spool.layout.bodyFile(record.id));
      const outcome = await importer.importMessage(record, body, items, inflightOf.get(record.id) ?? []).finally(() => body?.destroy());
      if (outcome === 'imported') {
        result.imported++;
        result.fallbackItems += items.length;
      } else {
        result.alreadyPresent++;
      }
      await spool.removeMessageFiles(record.id);
    }
    // Markers of jobs now in the new store: the new store carries them from here.
    await fs.rm(path.join(options.path, 'inflight'), { recursive: true, force: true });
  } finally {
    await spool.close();
  }
  return result;
}

/** The body file as a stream, or undefined when the message has none left (finished messages lose theirs). */
async function bodyOf(file: string): Promise<Readable | undefined> {
  try {
    return (await fs.open(file, 'r')).createReadStream();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Job ids of the file store's in-flight markers (inflight/<encoded job id>), [] when there are none. */
async function inflightJobs(root: string): Promise<string[]> {
  const names = await fs.readdir(path.join(root, 'inflight')).catch(() => [] as string[]);
  return names.map(jobIdOfMarker).filter((jobId): jobId is string => jobId !== undefined && parseJobId(jobId) !== undefined);
}

function groupBy<T>(values: readonly T[], key: (value: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const value of values) {
    const k = key(value);
    const group = groups.get(k);
    if (group) group.push(value);
    else groups.set(k, [value]);
  }
  return groups;
}
