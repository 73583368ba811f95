import { allJobsFinal, bodyNeededByFallback, finishedAt } from '../records';
import type { Retention } from '../roles';
import type { FallbackItem } from '../types';
import { removeFile } from './durable';
import type { FileSpool } from './spool';

const DEFAULT_FALLBACK_RETENTION = 30 * 86_400_000;
const DEFAULT_QUARANTINE_RETENTION = 30 * 86_400_000;

/** Retention over the embedded spool: looks only at messages the index knows are finished. */
export class FileRetention implements Retention {
  constructor(private readonly spool: FileSpool) {}

  async sweep(now = Date.now()): Promise<number> {
    const spool = this.spool;
    const { options, layout, index } = spool;
    await spool.refresh();
    const itemsByMessage = new Map<string, FallbackItem[]>();
    for (const item of index.fallback.values()) {
      const list = itemsByMessage.get(item.queueId) ?? [];
      list.push(item);
      itemsByMessage.set(item.queueId, list);
    }
    let removed = 0;
    for (const id of [...index.finished]) {
      const gone = await spool.locked(id, async () => {
        const record = await spool.readMeta(id);
        if (!record) {
          index.remove(id);
          return false;
        }
        if (!allJobsFinal(record)) {
          index.add(record);
          return false;
        }
        // The hint says which messages have items; their states are read from disk.
        const items = await Promise.all((itemsByMessage.get(id) ?? []).map((i) => spool.readFallback(i.id)));
        const states = items.map((i) => i?.state);
        if (bodyNeededByFallback(states, finishedAt(record), now, options.fallbackRetention ?? DEFAULT_FALLBACK_RETENTION)) return false;
        if (!record.bodyRemoved) {
          await removeFile(layout.bodyFile(id));
          record.bodyRemoved = true;
          await spool.writeMeta(record);
        }
        if (now - finishedAt(record) < options.keepFinished) return false;
        await spool.removeMessageFiles(id);
        return true;
      });
      if (gone) removed++;
    }
    // Quarantined entries may hold partial bodies: they are not kept for ever.
    const purged = await spool.quarantine.purge(now - (options.quarantineRetention ?? DEFAULT_QUARANTINE_RETENTION));
    if (purged.length > 0) options.logger.info({ event: 'quarantine-purged', count: purged.length, ids: purged.map((e) => e.id) }, 'quarantined entries past their retention deleted');
    return removed;
  }
}
