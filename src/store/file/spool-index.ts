import { allJobsFinal, emptyCounts, isClaimable, summariseWaiting, withLease } from '../records';
import { LeaseLostError, type FallbackItem, type JobState, type MessageRecord, type StoreCounts, type WaitingJobs } from '../types';
import { Schedule } from './schedule';

export type Lease = { owner: string; expiresAt: number };

/**
 * What one process knows about the spool, kept in memory so the hot paths (claiming, counting,
 * finding sweep work, offering fallback items) never scan the disk. A hint only: every change is
 * checked against disk under the message lock, and changes by other processes arrive through
 * fs.watch events and periodic rescans.
 *
 * Job leases live only here, in the relay that took them (one relay per spool). Losing one in a crash
 * just makes the job claimable again, so a lease costs no disk write.
 */
export class SpoolIndex {
  readonly schedule = new Schedule();
  readonly leases = new Map<string, Lease>();

  /** The lease `owner` holds on the job; LeaseLostError when it holds none (expired and taken, or never). */
  heldLease(jobId: string, owner: string): Lease {
    const lease = this.leases.get(jobId);
    if (lease?.owner !== owner) throw new LeaseLostError(`lease on ${jobId} is not held by ${owner}`);
    return lease;
  }

  /**
   * Hands `owner`'s lease back without an attempt: the stored job is unchanged (still waiting, due at or before
   * now), so it is offered again at once. LeaseLostError when `owner` holds none.
   */
  handBack(jobId: string, owner: string): void {
    this.heldLease(jobId, owner);
    this.leases.delete(jobId);
    this.schedule.set(jobId, Date.now());
  }
  /** Message id -> its job ids. */
  private readonly messages = new Map<string, string[]>();
  /** Job id -> stored state. */
  private readonly states = new Map<string, JobState>();
  /** Messages whose every job is final: the only ones sweep looks at. */
  readonly finished = new Set<string>();
  readonly fallback = new Map<string, FallbackItem>();

  /** Brings the index in line with one message as stored. */
  add(record: MessageRecord): void {
    this.messages.set(
      record.id,
      record.jobs.map((j) => j.id),
    );
    for (const job of record.jobs) {
      this.states.set(job.id, job.state);
      if (isClaimable(job) && !this.leases.has(job.id)) this.schedule.set(job.id, job.dueAt);
      else this.schedule.delete(job.id);
    }
    if (allJobsFinal(record)) this.finished.add(record.id);
    else this.finished.delete(record.id);
  }

  remove(messageId: string): void {
    for (const jobId of this.messages.get(messageId) ?? []) {
      this.schedule.delete(jobId);
      this.leases.delete(jobId);
      this.states.delete(jobId);
    }
    this.messages.delete(messageId);
    this.finished.delete(messageId);
  }

  messageIds(): string[] {
    return [...this.messages.keys()];
  }

  /** The record as callers see it: jobs under lease shown as 'leased'. */
  view(record: MessageRecord): MessageRecord {
    return { ...record, jobs: record.jobs.map((job) => withLease(job, this.leases.get(job.id))) };
  }

  setFallback(item: FallbackItem): void {
    this.fallback.set(item.id, item);
  }

  counts(): StoreCounts {
    const counts = emptyCounts();
    counts.messages = this.messages.size;
    for (const [jobId, state] of this.states) {
      const leased = this.leases.has(jobId) && (state === 'queued' || state === 'deferred');
      counts.jobs[leased ? 'leased' : state]++;
    }
    for (const item of this.fallback.values()) counts.fallback[item.state]++;
    return counts;
  }

  /** Waiting jobs from the schedule and the leases only (never every job): what a metrics scrape reads. */
  waiting(): WaitingJobs {
    const leased = [...this.leases.keys()].filter((jobId) => {
      const state = this.states.get(jobId);
      return state === 'queued' || state === 'deferred';
    });
    return summariseWaiting([...this.schedule.ids(), ...leased.filter((jobId) => !this.schedule.has(jobId))]);
  }
}
