import { mkdirSync, statfsSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { createDesign } from './designs';
import type { DesignId } from './options';
import { drive, largeMessage, summarize, type DesignFigures, type LargeFigures } from './driver';

/**
 * `npm run bench -- --mode store-designs`: the store's per-message hot-path work, in this one process, for the
 * real file and Redis stores and the two prototypes the issue names (LMDB, journal). Not part of `--mode all`.
 */

export interface StoreDesignOptions {
  designs: DesignId[];
  messages: number;
  connections: number;
  size: number;
  /** Size of the one large message per design; 0: none. */
  largeSize: number;
  /** Where the designs' files go (a disk, not tmpfs: fsync must cost what it costs). */
  dir: string;
}

export interface StoreDesignResult {
  figures: DesignFigures[];
  large: LargeFigures[];
  /** The file system the designs wrote to, and a warning when fsync there is free. */
  fileSystem: string;
  table: string;
}

const TMPFS_MAGIC = 0x01021994;
const WARMUP_MESSAGES = 100;

function fileSystemOf(dir: string): { name: string; tmpfs: boolean } {
  const { type } = statfsSync(dir);
  return { name: `0x${type.toString(16)}`, tmpfs: type === TMPFS_MAGIC };
}

export async function runStoreDesigns(options: StoreDesignOptions, log: (line: string) => void): Promise<StoreDesignResult> {
  mkdirSync(options.dir, { recursive: true });
  const fs = fileSystemOf(options.dir);
  if (fs.tmpfs) log(`  WARNING: ${options.dir} is tmpfs: fsync costs nothing there, the figures mean little`);
  const figures: DesignFigures[] = [];
  const large: LargeFigures[] = [];
  const gc = (globalThis as { gc?: () => void }).gc;
  for (const id of options.designs) {
    const design = createDesign(id, path.join(options.dir, `${id}-${randomBytes(4).toString('hex')}`));
    try {
      const store = await design.open();
      try {
        await drive(store, { messages: Math.min(WARMUP_MESSAGES, options.messages), connections: options.connections, size: options.size, owner: 'warm-up' });
        gc?.();
        log(`  ${id}: ${options.messages} messages of ${options.size} bytes, ${options.connections} at a time`);
        const serverBefore = await design.serverCpuSeconds?.();
        const syncsBefore = store.syncs?.();
        const sample = await drive(store, { messages: options.messages, connections: options.connections, size: options.size });
        const serverAfter = await design.serverCpuSeconds?.();
        const syncsAfter = store.syncs?.();
        const row = summarize(id, sample, serverBefore !== undefined && serverAfter !== undefined ? serverAfter - serverBefore : undefined);
        if (syncsBefore !== undefined && syncsAfter !== undefined) row.syncsPerMessage = (syncsAfter - syncsBefore) / options.messages;
        figures.push(row);
        log(`  ${id}: ${row.perSecond.toFixed(0)} msg/s, ${row.cpuMsPerMessage.toFixed(2)} CPU-ms/msg, accept p99 ${row.acceptP99Ms.toFixed(1)} ms`);
        if (options.largeSize > 0) {
          gc?.();
          const big = await largeMessage(id, store, options.largeSize);
          large.push(big);
          log(
            `  ${id}: one ${(options.largeSize / 1024 ** 2).toFixed(0)} MB message accepted in ${big.acceptMs.toFixed(0)} ms, read in ${big.readMs.toFixed(0)} ms, RSS +${big.rssGrowthMb.toFixed(1)} MB`,
          );
        }
      } finally {
        await store.close();
      }
    } finally {
      await design.dispose();
    }
  }
  return {
    figures,
    large,
    fileSystem: fs.name,
    table: [designTable(figures), ...(large.length ? ['', largeTable(large)] : []), '', designNotes(options.designs)].join('\n'),
  };
}

const fixed = (value: number | undefined, digits: number): string => (value !== undefined && Number.isFinite(value) ? value.toFixed(digits) : '');

const ROWS: Array<{ name: string; value: (f: DesignFigures) => number | undefined; digits: number; ratio: boolean }> = [
  { name: 'messages/s', value: (f) => f.perSecond, digits: 0, ratio: true },
  { name: 'CPU-ms / message (this process, all threads)', value: (f) => f.cpuMsPerMessage, digits: 3, ratio: true },
  { name: '… user', value: (f) => f.userMsPerMessage, digits: 3, ratio: false },
  { name: '… kernel', value: (f) => f.systemMsPerMessage, digits: 3, ratio: false },
  { name: 'store server CPU-ms / message (Redis)', value: (f) => f.serverCpuMsPerMessage, digits: 3, ratio: false },
  { name: 'accept (enqueue) p50 ms', value: (f) => f.acceptP50Ms, digits: 2, ratio: false },
  { name: 'accept (enqueue) p99 ms', value: (f) => f.acceptP99Ms, digits: 2, ratio: false },
  { name: 'fdatasync / message (own count)', value: (f) => f.syncsPerMessage, digits: 3, ratio: false },
  { name: 'peak RSS MB (this process, so far: earlier columns included)', value: (f) => f.peakRssMb, digits: 0, ratio: false },
];

/** Rows are figures, columns designs, then each design's ratio to the first column (the file store when run). */
export function designTable(figures: DesignFigures[]): string {
  const base = figures[0];
  const others = figures.slice(1);
  const header = ['figure', ...figures.map((f) => f.design), ...(base ? others.map((f) => `${f.design} / ${base.design}`) : [])];
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const row of ROWS) {
    if (!figures.some((f) => row.value(f) !== undefined)) continue;
    const ratios = others.map((f) => (row.ratio && base ? fixed(row.value(f)! / row.value(base)!, 2) : ''));
    lines.push(`| ${[row.name, ...figures.map((f) => fixed(row.value(f), row.digits)), ...ratios].join(' | ')} |`);
  }
  return lines.join('\n');
}

export function largeTable(large: LargeFigures[]): string {
  return [
    `| one ${(large[0]!.size / 1024 ** 2).toFixed(0)} MB message | ${large.map((l) => l.design).join(' | ')} |`,
    `|---|${large.map(() => '---').join('|')}|`,
    `| accept ms | ${large.map((l) => l.acceptMs.toFixed(0)).join(' | ')} |`,
    `| read back ms | ${large.map((l) => l.readMs.toFixed(0)).join(' | ')} |`,
    `| RSS growth MB (LMDB's includes its mapped file pages) | ${large.map((l) => l.rssGrowthMb.toFixed(1)).join(' | ')} |`,
  ].join('\n');
}

const NOTES: Record<DesignId, string> = {
  'file-store': 'file-store: the real FileStore; the body is removed later by the retention sweep, not on this path.',
  'redis-store': 'redis-store: the real RedisStore; the CPU row is this process only, the Redis server\'s own is the "store server" row.',
  'lmdb-store': 'lmdb-store: the real LmdbStore (src/store/lmdb), holding the spool lock as the relay does; accepted only after the commit is flushed.',
  lmdb: 'lmdb: measurement prototype (bench/store-designs/lmdb-spool.ts), accepted only after the commit is flushed.',
  'lmdb-nooverlap': 'lmdb-nooverlap: the same prototype with overlappingSync off.',
  journal: 'journal: measurement prototype (bench/store-designs/journal-spool.ts), no rotation or compaction.',
};

export function designNotes(designs: DesignId[]): string {
  return designs.map((d) => `- ${NOTES[d]}`).join('\n');
}
