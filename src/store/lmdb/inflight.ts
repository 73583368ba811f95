import type { LmdbEnv } from './env';

/**
 * In-flight markers in the LMDB environment (the file store keeps them as files, file/inflight.ts): one entry per
 * job this relay claimed and has not settled. Leases live only in memory, so without them a restarted relay could
 * not tell a job the dead one was delivering (a possible duplicate) from one that merely waited; those are flagged
 * `resumed` when claimed again. A claim batch's markers are written in one transaction, flushed before delivery
 * starts; a marker goes in the same transaction that records the job's result (no write of its own).
 */
export class LmdbInflight {
  private left: Set<string> | undefined;

  constructor(private readonly env: LmdbEnv) {}

  /** Markers a previous process left, read once at this process's first claim; those of jobs no longer waiting go. */
  async leftBehind(isWaiting: (jobId: string) => boolean): Promise<Set<string>> {
    if (this.left) return this.left;
    const left = new Set<string>();
    const stale: string[] = [];
    for (const jobId of this.env.inflight.getKeys()) {
      if (isWaiting(jobId)) left.add(jobId);
      else stale.push(jobId);
    }
    if (stale.length > 0) await this.env.root.transaction(() => stale.forEach((jobId) => this.env.inflight.removeSync(jobId)));
    this.left ??= left;
    return this.left;
  }

  /** Jobs of one claim, marked (and flushed) before any of them is handed to delivery. */
  async mark(jobIds: string[]): Promise<void> {
    if (jobIds.length === 0) return;
    await this.env.write(() => jobIds.forEach((jobId) => this.env.inflight.putSync(jobId, '')));
  }

  /** Inside the write transaction that settles the job. */
  clearInTxn(jobId: string): void {
    this.left?.delete(jobId);
    this.env.inflight.removeSync(jobId);
  }

  /** The lease handed back unused. Losing this removal only costs a needless possible-duplicate flag later. */
  async clear(jobId: string): Promise<void> {
    this.left?.delete(jobId);
    await this.env.root.transaction(() => this.env.inflight.removeSync(jobId));
  }
}
