import { allJobsFinal, bodyNeededByFallback, finishedAt } from '../records';
import type { Retention } from '../roles';
import type { MessageRecord } from '../types';
import { decodeFallback, encode } from './codec';
import { fallbackRange } from './quarantine';
import type { LmdbSpool } from './spool';

const DEFAULT_FALLBACK_RETENTION = 30 * 86_400_000;
const DEFAULT_QUARANTINE_RETENTION = 30 * 86_400_000;
/** Finished messages judged in one write transaction. */
const SWEEP_BATCH = 256;

type Swept = { removed: boolean; record?: MessageRecord; gone?: boolean; damaged?: { damaged: string }; bodyDropped?: boolean };

/** Retention over LMDB: looks only at messages the index knows are finished, judged a batch to a transaction. */
export class LmdbRetention implements Retention {
  constructor(private readonly spool: LmdbSpool) {}

  async sweep(now = Date.now()): Promise<number> {
    const spool = this.spool;
    const { options, index, env } = spool;
    await spool.refresh();
    let removed = 0;
    const finished = [...index.finished];
    // Judged SWEEP_BATCH messages to a transaction: one flush for many, instead of one each.
    for (let start = 0; start < finished.length; start += SWEEP_BATCH) {
      const ids = finished.slice(start, start + SWEEP_BATCH);
      const outcomes = await env.write(() => ids.map((id) => this.judge(id, now)));
      ids.forEach((id, at) => {
        const outcome = outcomes[at]!;
        if (outcome.damaged) spool.afterDamage(id, outcome.damaged);
        if (outcome.record) index.add(outcome.record);
        if (outcome.removed || outcome.gone) {
          index.remove(id);
          for (const itemId of [...index.fallback.keys()]) if (itemId.startsWith(`${id}.`)) index.fallback.delete(itemId);
        }
        if (outcome.removed) removed++;
      });
      // Bodies (slots zeroed, files unlinked) once the records without them are committed.
      await spool.removeBodies(ids.filter((_, at) => outcomes[at]!.bodyDropped));
    }
    const purged = await spool.quarantine.purge(now - (options.quarantineRetention ?? DEFAULT_QUARANTINE_RETENTION));
    if (purged.length > 0) options.logger.info({ event: 'quarantine-purged', count: purged.length, ids: purged.map((e) => e.id) }, 'quarantined entries past their retention deleted');
    return removed;
  }

  /** Inside the sweep's write transaction: drops a finished message's body, then the record once kept long enough. */
  private judge(id: string, now: number): Swept {
    const spool = this.spool;
    const { options, env } = spool;
    const read = spool.readMessageInTxn(id);
    if ('damaged' in read) return { removed: false, damaged: read };
    if ('gone' in read) return { removed: false, gone: true };
    const record = read.value;
    if (!allJobsFinal(record)) return { removed: false, record };
    const itemIds = [...env.fallback.getKeys(fallbackRange(id))];
    const states = itemIds.map((itemId) => {
      const item = decodeFallback(env.fallback.get(itemId), itemId);
      return 'value' in item ? item.value.state : undefined;
    });
    if (bodyNeededByFallback(states, finishedAt(record), now, options.fallbackRetention ?? DEFAULT_FALLBACK_RETENTION)) return { removed: false, record };
    const bodyDropped = !record.bodyRemoved;
    if (bodyDropped) {
      spool.removeChunks(id);
      record.bodyRemoved = true;
      env.messages.putSync(id, encode(record));
    }
    if (now - finishedAt(record) < options.keepFinished) return { removed: false, record, bodyDropped };
    env.messages.removeSync(id);
    for (const itemId of itemIds) env.fallback.removeSync(itemId);
    return { removed: true, bodyDropped };
  }
}
