import { isFallbackId, messageIdOfFallback } from '../ids';
import { matchesFallbackFilter, page, reopenRecipient } from '../records';
import type { FallbackStore } from '../roles';
import { handedOver, LeaseLostError, NotFoundError, type FallbackFilter, type FallbackItem, type MessageRecord } from '../types';
import { decodeFallback, encode } from './codec';
import { byDiversion, type LmdbSpool } from './spool';

/** Fallback items over LMDB: one entry per item, every change a write transaction checked against the item as stored. */
export class LmdbFallbackStore implements FallbackStore {
  constructor(private readonly spool: LmdbSpool) {}

  async listFallback(filter: FallbackFilter = {}): Promise<FallbackItem[]> {
    const items: FallbackItem[] = [];
    const damaged: string[] = [];
    for (const { key, value } of this.spool.env.fallback.getRange()) {
      const decoded = decodeFallback(value, key);
      if ('value' in decoded) items.push(decoded.value);
      else damaged.push(key);
    }
    for (const id of damaged) await this.spool.readFallback(id);
    return page(items.filter((i) => matchesFallbackFilter(i, filter)).sort(byDiversion), filter);
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
    if (candidates.length === 0) return [];
    const outcome = await spool.env.write(() => {
      const claimed: FallbackItem[] = [];
      const gone: string[] = [];
      const damaged: Array<{ id: string; read: { damaged: string } }> = [];
      for (const candidate of candidates) {
        if (claimed.length >= limit) break;
        const read = spool.readFallbackInTxn(candidate.id);
        if ('damaged' in read) damaged.push({ id: candidate.id, read });
        if (!('value' in read)) {
          gone.push(candidate.id);
          continue;
        }
        if (!claimable(read.value)) continue;
        const next: FallbackItem = { ...read.value, state: 'claimed', claim: { owner, expiresAt: now + leaseMs } };
        spool.env.fallback.putSync(next.id, encode(next));
        claimed.push(next);
      }
      return { claimed, gone, damaged };
    });
    for (const { id, read } of outcome.damaged) spool.afterDamage(id, read);
    for (const id of outcome.gone) spool.index.fallback.delete(id);
    for (const item of outcome.claimed) spool.index.setFallback(item);
    return outcome.claimed;
  }

  async ackFallback(id: string, owner: string): Promise<void> {
    await this.change(id, (item) => {
      if (item.state === 'acked') return {};
      if (item.state !== 'claimed' || item.claim?.owner !== owner) return { refused: new LeaseLostError(`fallback item ${id} is not claimed by ${owner}`) };
      const { claim: _claim, ...rest } = item;
      return { item: { ...rest, state: 'acked', ackedAt: Date.now() } };
    });
  }

  async releaseFallback(id: string): Promise<void> {
    const spool = this.spool;
    await this.change(id, (item) => {
      if (item.state === 'acked') return { refused: handedOver(id) };
      const read = spool.readMessageInTxn(item.queueId);
      const record = 'value' in read ? read.value : undefined;
      const at = record?.jobs.findIndex((j) => j.id === item.jobId) ?? -1;
      if (record && at >= 0) {
        // The recipient is back in delivery in the same transaction that drops the item.
        record.jobs[at] = reopenRecipient(record.jobs[at]!, item.recipient, Date.now());
        spool.env.messages.putSync(record.id, encode(record));
        spool.changes.note(record.id);
        return { remove: true, record };
      }
      return { remove: true };
    });
  }

  async deleteFallback(id: string): Promise<void> {
    await this.change(id, () => ({ remove: true }));
  }

  /**
   * One item read and changed in one write transaction. `task` returns the new item, or that it goes (with the
   * message record it changed), or why it is refused; nothing is written when refused.
   */
  private async change(id: string, task: (item: FallbackItem) => { item?: FallbackItem; remove?: boolean; record?: MessageRecord; refused?: Error }): Promise<void> {
    const spool = this.spool;
    if (!isFallbackId(id) || messageIdOfFallback(id) === '') throw new NotFoundError(`fallback item ${id} not found`);
    const outcome = await spool.env.write(() => {
      const read = spool.readFallbackInTxn(id);
      if (!('value' in read)) return { missing: read };
      const result = task(read.value);
      if (result.refused) return result;
      if (result.item) spool.env.fallback.putSync(id, encode(result.item));
      if (result.remove) {
        spool.env.fallback.removeSync(id);
        spool.changes.note(`f:${id}`);
      }
      return result;
    });
    if ('missing' in outcome) {
      if ('damaged' in outcome.missing) spool.afterDamage(id, outcome.missing);
      spool.index.fallback.delete(id);
      throw new NotFoundError(`fallback item ${id} not found`);
    }
    if (outcome.refused) throw outcome.refused;
    if (outcome.item) spool.index.setFallback(outcome.item);
    if (outcome.remove) spool.index.fallback.delete(id);
    if (outcome.record) spool.index.add(outcome.record);
  }
}
