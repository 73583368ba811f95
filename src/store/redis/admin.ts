import { isMessageId } from '../ids';
import { parseJobId } from '../ids';
import { emptyCounts, evidenceOnly, holdJob, jobInScope, matchesFilter, page, releaseJob, retryJobNow, summariseWaiting, withLease } from '../records';
import type { QueueAdmin } from '../roles';
import { NotFoundError, type JobRecord, type JobScope, type JobState, type MessageFilter, type MessageRecord, type StoreCounts, type WaitingJobs } from '../types';
import { BATCH, checkStored, checkStoredJob, type Lease, type RedisCore, type StoredMessage } from './core';
import { parseFallbackState } from './scripts';

/** Admin reads and actions in Redis: records assembled from message and job keys, changes by compare-and-set. */
export class RedisQueueAdmin implements QueueAdmin {
  constructor(private readonly core: RedisCore) {}

  async getMessage(id: string): Promise<MessageRecord | undefined> {
    if (!isMessageId(id)) return undefined;
    const [record] = await this.loadMessages([id], await this.leaseMap());
    return record;
  }

  async listMessages(filter: MessageFilter = {}): Promise<MessageRecord[]> {
    const now = Date.now();
    const ids = await this.core.redis.zrange(this.core.keys.messages(), '0', '-1');
    const leases = await this.leaseMap();
    const out: MessageRecord[] = [];
    for (let i = 0; i < ids.length; i += BATCH) {
      for (const record of await this.loadMessages(ids.slice(i, i + BATCH), leases)) {
        if (matchesFilter(record, filter, now)) out.push(record);
      }
    }
    return page(out, filter);
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
    const stored = isMessageId(messageId) ? await this.core.readStored(messageId) : undefined;
    if (!stored || stored.deletedAt !== undefined) throw new NotFoundError(`message ${messageId} not found`);
    const [record] = await this.loadMessages([messageId], new Map());
    const kept = record && evidenceOnly(record, Date.now());
    if (!kept) {
      await this.core.removeMessage(stored);
      return;
    }
    await this.core.keepEvidenceOnly(stored, kept);
  }

  async counts(): Promise<StoreCounts> {
    const k = this.core.keys;
    const counts = emptyCounts();
    const replies = await this.core.redis.pipeline().hgetall(k.jobStates()).hgetall(k.leaseOwners()).hvals(k.fallbackStates()).zcard(k.messages()).hlen(k.quarantine()).exec();
    const [states, owners, fallbackStates, messages, quarantined] = (replies ?? []).map(([error, value]) => {
      if (error) throw error;
      return value;
    }) as [Record<string, string>, Record<string, string>, string[], number, number];
    for (const [jobId, state] of Object.entries(states)) {
      const shown = owners[jobId] !== undefined && (state === 'queued' || state === 'deferred') ? 'leased' : (state as JobState);
      counts.jobs[shown]++;
    }
    for (const value of fallbackStates) counts.fallback[parseFallbackState(value).state]++;
    counts.messages = messages;
    counts.quarantined = quarantined;
    return counts;
  }

  /**
   * The due set (waiting, unleased) and the lease set only: their size is the queue, not the finished jobs kept
   * for retention. A leased job counts while its stored state still waits (an attempt on a held job does not).
   */
  async waitingJobs(): Promise<WaitingJobs> {
    const k = this.core.keys;
    const replies = await this.core.redis.pipeline().zrange(k.due(), '0', '-1').zrange(k.leases(), '0', '-1').exec();
    const [due, leased] = (replies ?? []).map(([error, value]) => {
      if (error) throw error;
      return value;
    }) as [string[], string[]];
    const states = leased.length > 0 ? await this.core.redis.hmget(k.jobStates(), ...leased) : [];
    const dueSet = new Set(due);
    const attempted = leased.filter((jobId, i) => !dueSet.has(jobId) && (states[i] === 'queued' || states[i] === 'deferred'));
    return summariseWaiting([...due, ...attempted]);
  }

  private async updateJobs(messageId: string, change: (job: JobRecord, now: number) => JobRecord | undefined, scope?: JobScope): Promise<MessageRecord> {
    const stored = isMessageId(messageId) ? await this.core.readStored(messageId) : undefined;
    if (!stored) throw new NotFoundError(`message ${messageId} not found`);
    for (const jobId of stored.jobIds) {
      if (!jobInScope({ domain: parseJobId(jobId)?.domain ?? '' }, scope)) continue;
      await this.core.updateJob(
        jobId,
        (job) => {
          const next = change(job, Date.now());
          return next && { job: next };
        },
        stored,
      );
    }
    const record = await this.getMessage(messageId);
    if (!record) throw new NotFoundError(`message ${messageId} not found`);
    return record;
  }

  private async leaseMap(): Promise<Map<string, Lease>> {
    const k = this.core.keys;
    const replies = await this.core.redis.pipeline().hgetall(k.leaseOwners()).zrange(k.leases(), '0', '-1', 'WITHSCORES').exec();
    const [owners, scores] = (replies ?? []).map(([error, value]) => {
      if (error) throw error;
      return value;
    }) as [Record<string, string>, string[]];
    const expiry = new Map<string, number>();
    for (let i = 0; i + 1 < scores.length; i += 2) expiry.set(scores[i]!, Number(scores[i + 1]));
    const map = new Map<string, Lease>();
    for (const [jobId, owner] of Object.entries(owners)) map.set(jobId, { owner, expiresAt: expiry.get(jobId) ?? 0 });
    return map;
  }

  private async loadMessages(ids: string[], leases: Map<string, Lease>): Promise<MessageRecord[]> {
    if (ids.length === 0) return [];
    const { redis, keys: k } = this.core;
    const raws = await redis.mget(ids.map((id) => k.message(id)));
    // Damaged records are set aside and left out, so one bad key never stops a listing.
    const damaged = new Set<string>();
    const stored: StoredMessage[] = [];
    for (const [i, raw] of raws.entries()) {
      if (raw === null) continue;
      const checked = checkStored(raw, ids[i]);
      if (checked.ok) stored.push(checked.value);
      else {
        damaged.add(ids[i]!);
        await this.core.quarantine(ids[i]!, 'message', checked.code, checked.reason);
      }
    }
    const jobIds = stored.flatMap((s) => s.jobIds);
    const jobs = new Map<string, JobRecord>();
    if (jobIds.length > 0) {
      const rawJobs = await redis.mget(jobIds.map((id) => k.job(id)));
      for (const [i, raw] of rawJobs.entries()) {
        if (raw === null) continue;
        const jobId = jobIds[i]!;
        const checked = checkStoredJob(raw, jobId);
        if (checked.ok) jobs.set(jobId, checked.value);
        else {
          const messageId = jobId.slice(0, jobId.indexOf('/'));
          if (!damaged.has(messageId)) await this.core.quarantine(messageId, 'job', checked.code, checked.reason, jobId);
          damaged.add(messageId);
        }
      }
    }
    return stored
      .filter((s) => !damaged.has(s.id))
      .map(({ jobIds: ownJobs, ...message }) => ({
        ...message,
        jobs: ownJobs.flatMap((id) => {
          const job = jobs.get(id);
          return job ? [withLease(job, leases.get(id))] : [];
        }),
      }));
  }
}
