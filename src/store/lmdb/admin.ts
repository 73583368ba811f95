import { isMessageId } from '../ids';
import { evidenceOnly, holdJob, jobInScope, matchesFilter, page, releaseJob, retryJobNow } from '../records';
import type { QueueAdmin } from '../roles';
import { NotFoundError, type JobRecord, type JobScope, type MessageFilter, type MessageRecord, type StoreCounts, type WaitingJobs } from '../types';
import { decodeMessage, encode } from './codec';
import { fallbackRange } from './quarantine';
import type { LmdbSpool } from './spool';

/**
 * Admin reads and actions over LMDB. Every change is one write transaction that reads the record, changes it and
 * appends the message id to the change log, so a relay in another process re-reads it.
 */
export class LmdbQueueAdmin implements QueueAdmin {
  constructor(private readonly spool: LmdbSpool) {}

  async getMessage(id: string): Promise<MessageRecord | undefined> {
    if (!isMessageId(id)) return undefined;
    const record = await this.spool.readMessage(id);
    return record && this.spool.index.view(record);
  }

  async listMessages(filter: MessageFilter = {}): Promise<MessageRecord[]> {
    const now = Date.now();
    const records: MessageRecord[] = [];
    const damaged: string[] = [];
    for (const { key, value } of this.spool.env.messages.getRange()) {
      const decoded = decodeMessage(value, key);
      if ('value' in decoded) records.push(this.spool.index.view(decoded.value));
      else damaged.push(key);
    }
    // Read again one by one: each damaged record is set aside (or reported) as any read would.
    for (const id of damaged) await this.spool.readMessage(id);
    return page(
      records.filter((r) => matchesFilter(r, filter, now)),
      filter,
    );
  }

  hold(messageId: string, scope?: JobScope): Promise<MessageRecord> {
    return this.updateJobs(messageId, holdJob, scope);
  }

  release(messageId: string, scope?: JobScope): Promise<MessageRecord> {
    return this.updateJobs(messageId, releaseJob, scope);
  }

  retryNow(messageId: string, scope?: JobScope): Promise<MessageRecord> {
    return this.updateJobs(messageId, retryJobNow, scope);
  }

  async deleteMessage(messageId: string): Promise<void> {
    if (!isMessageId(messageId)) throw new NotFoundError(`message ${messageId} not found`);
    const spool = this.spool;
    const { env } = spool;
    const outcome = await env.write(() => {
      const read = spool.readMessageInTxn(messageId);
      if (!('value' in read) || read.value.deletedAt !== undefined) return { missing: read };
      const kept = evidenceOnly(read.value, Date.now());
      // The evidence-only record (or none) with the body and fallback items gone, in one transaction.
      if (kept) env.messages.putSync(messageId, encode(kept));
      else env.messages.removeSync(messageId);
      spool.removeChunks(messageId);
      for (const itemId of [...env.fallback.getKeys(fallbackRange(messageId))]) env.fallback.removeSync(itemId);
      spool.changes.note(messageId);
      return { kept };
    });
    if ('missing' in outcome && outcome.missing) {
      if ('damaged' in outcome.missing) spool.afterDamage(messageId, outcome.missing);
      throw new NotFoundError(`message ${messageId} not found`);
    }
    // The body (its slot zeroed, or its file unlinked) only once the record without a body is committed.
    await spool.removeBodies([messageId]);
    for (const itemId of [...spool.index.fallback.keys()]) if (itemId.startsWith(`${messageId}.`)) spool.index.fallback.delete(itemId);
    if (outcome.kept) spool.index.add(outcome.kept);
    else spool.index.remove(messageId);
  }

  /** From the in-memory index: cheap enough for metrics scrapes; another process's changes show once polled. */
  async counts(): Promise<StoreCounts> {
    await this.spool.refresh();
    const counts = this.spool.index.counts();
    counts.quarantined = this.spool.quarantine.count();
    return counts;
  }

  async waitingJobs(): Promise<WaitingJobs> {
    await this.spool.refresh();
    return this.spool.index.waiting();
  }

  private async updateJobs(messageId: string, change: (job: JobRecord, now: number) => JobRecord | undefined, scope?: JobScope): Promise<MessageRecord> {
    const spool = this.spool;
    if (!isMessageId(messageId)) throw new NotFoundError(`message ${messageId} not found`);
    const outcome = await spool.env.write(() => {
      const read = spool.readMessageInTxn(messageId);
      if (!('value' in read)) return { missing: read };
      const record = read.value;
      const now = Date.now();
      let changed = false;
      record.jobs = record.jobs.map((job) => {
        const next = jobInScope(job, scope) ? change(job, now) : undefined;
        if (next) changed = true;
        return next ?? job;
      });
      if (changed) {
        spool.env.messages.putSync(messageId, encode(record));
        spool.changes.note(messageId);
      }
      return { record };
    });
    if ('missing' in outcome && outcome.missing) {
      if ('damaged' in outcome.missing) spool.afterDamage(messageId, outcome.missing);
      throw new NotFoundError(`message ${messageId} not found`);
    }
    spool.index.add(outcome.record);
    return spool.index.view(outcome.record);
  }
}
