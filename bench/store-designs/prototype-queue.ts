import { Readable } from 'node:stream';
import { BodyVerifier } from '../../src/store/body-check';
import { parseJobId } from '../../src/store/ids';
import { applyJobResult, isClaimable, withLease } from '../../src/store/records';
import type { ClaimedJob, JobRecord, JobResult, MessageRecord } from '../../src/store/types';

/**
 * What both measurement prototypes share (not product code): due jobs and leases in memory (the file store keeps
 * them in memory too), a claim built from the stored record, and a result applied with the real records.ts rules.
 */
export class PrototypeQueue {
  private readonly due: string[] = [];
  private readonly leases = new Map<string, string>();

  /** The waiting jobs of a record enter the due list (after enqueue, or when a recovery scan finds them). */
  offer(record: MessageRecord): void {
    for (const job of record.jobs) if (isClaimable(job)) this.due.push(job.id);
  }

  get waiting(): number {
    return this.due.length;
  }

  /** Leases the next due job; the caller reads its record (from wherever the design keeps it). */
  claim(owner: string, read: (messageId: string) => MessageRecord | undefined, leaseMs = 120_000): ClaimedJob | undefined {
    for (let jobId = this.due.shift(); jobId !== undefined; jobId = this.due.shift()) {
      const record = read(parseJobId(jobId)?.messageId ?? '');
      const job = record?.jobs.find((j) => j.id === jobId);
      if (!record || !job || !isClaimable(job)) continue;
      this.leases.set(jobId, owner);
      const { jobs: _jobs, ...message } = record;
      return { job: withLease(job, { owner, expiresAt: Date.now() + leaseMs }), message };
    }
    return undefined;
  }

  /** The record with the result applied (not yet stored); throws when `owner` does not hold the lease. */
  complete(jobId: string, owner: string, result: JobResult, read: (messageId: string) => MessageRecord | undefined): { record: MessageRecord; job: JobRecord } {
    if (this.leases.get(jobId) !== owner) throw new Error(`job ${jobId} is not leased to ${owner}`);
    const record = read(parseJobId(jobId)?.messageId ?? '');
    const index = record?.jobs.findIndex((j) => j.id === jobId) ?? -1;
    if (!record || index < 0) throw new Error(`job ${jobId} not found`);
    const { job } = applyJobResult(record.jobs[index]!, record, result, Date.now());
    const jobs = [...record.jobs];
    jobs[index] = job;
    return { record: { ...record, jobs }, job };
  }

  /** Once the completed record is durable. */
  settled(jobId: string): void {
    this.leases.delete(jobId);
  }
}

/** The stored chunks as a body stream, checked against the size and SHA-256 kept at enqueue (as openBody does). */
export function verifiedBody(record: Pick<MessageRecord, 'id' | 'size' | 'sha256'>, chunks: Iterable<Buffer> | AsyncIterable<Buffer>): Readable {
  const verifier = new BodyVerifier({ size: record.size, sha256: record.sha256 }, async (reason) => new Error(`message ${record.id}: ${reason}`));
  const source = Readable.from(chunks, { objectMode: false });
  source.on('error', (error) => verifier.destroy(error));
  return source.pipe(verifier);
}
