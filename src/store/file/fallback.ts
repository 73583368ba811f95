import { isFallbackId, messageIdOfFallback } from '../ids';
import { matchesFallbackFilter, page, reopenRecipient } from '../records';
import type { FallbackStore } from '../roles';
import { handedOver, LeaseLostError, type FallbackFilter, type FallbackItem } from '../types';
import { byDiversion, type FileSpool } from './spool';

/** Fallback items over the embedded spool: one JSON file per item, changed under its message's lock. */
export class FileFallbackStore implements FallbackStore {
  constructor(private readonly spool: FileSpool) {}

  async listFallback(filter: FallbackFilter = {}): Promise<FallbackItem[]> {
    const items = await this.spool.readAllFallback();
    return page(
      items.filter((i) => matchesFallbackFilter(i, filter)),
      filter,
    );
  }

  async getFallback(id: string): Promise<FallbackItem | undefined> {
    if (!isFallbackId(id)) return undefined;
    return this.spool.readFallback(id);
  }

  async claimFallback(owner: string, limit: number, leaseMs: number, now = Date.now()): Promise<FallbackItem[]> {
    const spool = this.spool;
    await spool.refresh();
    const claimable = (item: FallbackItem) => item.state === 'ready' || (item.state === 'claimed' && (item.claim?.expiresAt ?? 0) <= now);
    const candidates = [...spool.index.fallback.values()].filter(claimable).sort(byDiversion);
    const claimed: FallbackItem[] = [];
    for (const candidate of candidates) {
      if (claimed.length >= limit) break;
      const item = await spool.locked(messageIdOfFallback(candidate.id), async () => {
        const current = await spool.readFallback(candidate.id);
        if (!current) spool.index.fallback.delete(candidate.id);
        if (!current || !claimable(current)) return undefined;
        const next: FallbackItem = { ...current, state: 'claimed', claim: { owner, expiresAt: now + leaseMs } };
        await spool.writeFallback(next);
        return next;
      });
      if (item) claimed.push(item);
    }
    return claimed;
  }

  async ackFallback(id: string, owner: string): Promise<void> {
    await this.spool.withFallback(id, async (item) => {
      if (item.state === 'acked') return;
      if (item.state !== 'claimed' || item.claim?.owner !== owner) throw new LeaseLostError(`fallback item ${id} is not claimed by ${owner}`);
      const { claim: _claim, ...rest } = item;
      await this.spool.writeFallback({ ...rest, state: 'acked', ackedAt: Date.now() });
    });
  }

  async releaseFallback(id: string): Promise<void> {
    const spool = this.spool;
    await spool.withFallback(id, async (item) => {
      if (item.state === 'acked') throw handedOver(id);
      const record = await spool.readMeta(item.queueId);
      const index = record?.jobs.findIndex((j) => j.id === item.jobId) ?? -1;
      if (record && index >= 0) {
        record.jobs[index] = reopenRecipient(record.jobs[index]!, item.recipient, Date.now());
        // The recipient is back in delivery before the item goes, so a crash in between cannot lose it.
        await spool.writeMeta(record);
        spool.index.add(record);
      }
      await spool.removeFallback(id);
    });
  }

  async deleteFallback(id: string): Promise<void> {
    await this.spool.withFallback(id, async () => this.spool.removeFallback(id));
  }
}
