import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fsyncDir, unlinkIfPresent } from './durable';

/**
 * In-flight markers of the embedded spool: `inflight/<job id>`, an empty file per job this relay has claimed and
 * not yet settled. Leases live only in memory, so without them a restarted relay could not tell a job the dead
 * one was delivering (its MX may already have the message: a possible duplicate) from one that merely waited.
 * The relay's first claim after start reads what a previous process left; those jobs are flagged `resumed`
 * when claimed, as the Redis store flags a job whose lease expired mid-attempt.
 *
 * Cost per attempt: one empty-file create at claim (plus one directory fsync per claim batch, so the marker
 * survives a power cut) and one unlink when the result is recorded or the lease handed back. The unlink is not
 * fsynced: losing it in a power cut only costs a needless possible-duplicate line, never mail. Only the relay
 * (the process that claims) writes or reads markers; admin commands never see them.
 */
export class InflightMarkers {
  readonly dir: string;
  private ready: Promise<void> | undefined;
  private left: Set<string> | undefined;

  constructor(root: string) {
    this.dir = path.join(root, 'inflight');
  }

  /**
   * Markers a previous process left, read once (at this process's first claim, before it writes any). Those of
   * jobs no longer waiting (finished, held, deleted) are removed: they can never be resumed.
   */
  async leftBehind(isWaiting: (jobId: string) => boolean): Promise<Set<string>> {
    if (this.left) return this.left;
    await this.prepare();
    const left = new Set<string>();
    for (const name of await fs.readdir(this.dir)) {
      const jobId = jobIdOfMarker(name);
      if (jobId !== undefined && isWaiting(jobId)) left.add(jobId);
      else await unlinkIfPresent(path.join(this.dir, name));
    }
    this.left ??= left;
    return this.left;
  }

  /** Jobs of one claim: marked before any of them is handed to delivery. */
  async mark(jobIds: string[]): Promise<void> {
    if (jobIds.length === 0) return;
    await this.prepare();
    await Promise.all(jobIds.map(async (jobId) => (await fs.open(this.file(jobId), 'w', 0o600)).close()));
    await fsyncDir(this.dir);
  }

  /** The attempt is settled (result recorded, or the lease handed back unused). */
  async clear(jobId: string): Promise<void> {
    this.left?.delete(jobId);
    await unlinkIfPresent(this.file(jobId));
  }

  private file(jobId: string): string {
    return path.join(this.dir, encodeURIComponent(jobId));
  }

  private prepare(): Promise<void> {
    this.ready ??= fs.mkdir(this.dir, { recursive: true, mode: 0o700 }).then(() => undefined);
    return this.ready;
  }
}

/** The job id an in-flight marker's file name stands for; undefined for a name this store did not write. */
export function jobIdOfMarker(name: string): string | undefined {
  try {
    const jobId = decodeURIComponent(name);
    return jobId.includes('/') ? jobId : undefined;
  } catch {
    return undefined;
  }
}
