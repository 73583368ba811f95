/** The file the commits go to: a FileHandle opened for appending (tests pass a fake). */
export interface AppendTarget {
  writev(buffers: Buffer[]): Promise<{ bytesWritten: number }>;
  datasync(): Promise<void>;
}

/**
 * Group commit for an append-only file (measurement prototype): appends queue up while a write+fdatasync runs;
 * the next round writes all of them in one writev and, if any asked for it, syncs once. An append asking for a
 * sync resolves only after the fdatasync that covers its bytes; one that does not (a body chunk) after its write.
 * Offsets are handed out at append time, in append order, which is also the order the bytes land in the file.
 */
export class GroupCommit {
  private pending: Array<{ buffers: Buffer[]; bytes: number; sync: boolean; resolve: () => void; reject: (error: Error) => void }> = [];
  private running: Promise<void> | undefined;
  private failed: Error | undefined;
  private next: number;
  /** Bytes appended but not yet written. */
  queuedBytes = 0;
  /** fdatasync calls and write rounds so far. */
  syncs = 0;
  rounds = 0;

  constructor(
    private readonly handle: AppendTarget,
    end: number,
  ) {
    this.next = end;
  }

  /** Queues `buffers` (one frame); `at` is the file offset it will start at. */
  append(buffers: Buffer[], sync: boolean): { at: number; done: Promise<void> } {
    if (this.failed) return { at: -1, done: Promise.reject(this.failed) };
    const bytes = buffers.reduce((sum, b) => sum + b.length, 0);
    const at = this.next;
    this.next += bytes;
    this.queuedBytes += bytes;
    const done = new Promise<void>((resolve, reject) => this.pending.push({ buffers, bytes, sync, resolve, reject }));
    this.running ??= this.run();
    return { at, done };
  }

  /** Resolves once nothing is queued or being written. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async run(): Promise<void> {
    // Let every writer of this event turn join the first round too.
    await Promise.resolve();
    let batch: typeof this.pending = [];
    try {
      while (this.pending.length > 0) {
        batch = this.pending.splice(0);
        const bytes = batch.reduce((sum, b) => sum + b.bytes, 0);
        const { bytesWritten } = await this.handle.writev(batch.flatMap((b) => b.buffers));
        if (bytesWritten !== bytes) throw new Error(`journal: wrote ${bytesWritten} of ${bytes} bytes`);
        this.queuedBytes -= bytes;
        this.rounds++;
        if (batch.some((b) => b.sync)) {
          await this.handle.datasync();
          this.syncs++;
        }
        for (const b of batch.splice(0)) b.resolve();
      }
    } catch (error) {
      // After a failed write or sync nothing in the batch or later may be acknowledged: what is on disk is unknown.
      this.failed = error as Error;
      for (const b of [...batch, ...this.pending.splice(0)]) b.reject(this.failed);
    } finally {
      this.running = undefined;
    }
  }
}
