import { isMessageId } from '../ids';
import { evidenceOnly, holdJob, jobInScope, matchesFilter, page, releaseJob, retryJobNow } from '../records';
import type { QueueAdmin } from '../roles';
import { NotFoundError, type JobRecord, type JobScope, type MessageFilter, type MessageRecord, type StoreCounts, type WaitingJobs } from '../types';
import type { FileSpool } from './spool';

/** Admin reads and actions over the embedded spool; every change is made under the message's lock. */
export class FileQueueAdmin implements QueueAdmin {
  constructor(private readonly spool: FileSpool) {}

  async getMessage(id: string): Promise<MessageRecord | undefined> {
    if (!isMessageId(id)) return undefined;
    const record = await this.spool.readMeta(id);
    return record && this.spool.index.view(record);
  }

  async listMessages(filter: MessageFilter = {}): Promise<MessageRecord[]> {
    const now = Date.now();
    const records = (await this.spool.readAllMeta()).map((r) => this.spool.index.view(r));
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
    await this.spool.locked(messageId, async () => {
      const record = await this.spool.readMeta(messageId);
      if (!record || record.deletedAt !== undefined) throw new NotFoundError(`message ${messageId} not found`);
      const kept = evidenceOnly(record, Date.now());
      if (!kept) {
        await this.spool.removeMessageFiles(record.id);
        return;
      }
      // The evidence-only record replaces the metadata first; body and fallback items go after.
      await this.spool.writeMeta(kept);
      await this.spool.removeMessageBody(record.id);
      this.spool.index.add(kept);
    });
  }

  /** From the in-memory index: cheap enough for metrics scrapes; another process's changes show once seen. */
  async counts(): Promise<StoreCounts> {
    await this.spool.refresh();
    const counts = this.spool.index.counts();
    counts.quarantined = (await this.spool.quarantine.list()).length;
    return counts;
  }

  /** From the in-memory schedule and leases, like counts(). */
  async waitingJobs(): Promise<WaitingJobs> {
    await this.spool.refresh();
    return this.spool.index.waiting();
  }

  private async updateJobs(messageId: string, change: (job: JobRecord, now: number) => JobRecord | undefined, scope?: JobScope): Promise<MessageRecord> {
    const spool = this.spool;
    if (!isMessageId(messageId)) throw new NotFoundError(`message ${messageId} not found`);
    return spool.locked(messageId, async () => {
      const record = await spool.readMeta(messageId);
      if (!record) throw new NotFoundError(`message ${messageId} not found`);
      const now = Date.now();
      let changed = false;
      record.jobs = record.jobs.map((job) => {
        const next = jobInScope(job, scope) ? change(job, now) : undefined;
        if (next) changed = true;
        return next ?? job;
      });
      if (changed) await spool.writeMeta(record);
      spool.index.add(record);
      return spool.index.view(record);
    });
  }
}
