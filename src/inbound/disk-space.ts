import { promises as fs } from 'node:fs';

/**
 * Free space on the spool's file system, checked at MAIL so a full disk gets `452 4.3.1` before
 * the client sends a byte of DATA. Cached briefly: one statfs per second is plenty.
 */
export class DiskSpaceCheck {
  private checkedAt = 0;
  private lastFree: number | undefined;

  constructor(
    private readonly path: string,
    private readonly minFree: number,
    private readonly cacheMs = 1000,
  ) {}

  /** Free bytes available to this process, or undefined when the file system cannot be asked. */
  async freeBytes(now = Date.now()): Promise<number | undefined> {
    if (now - this.checkedAt < this.cacheMs) return this.lastFree;
    try {
      const stats = await fs.statfs(this.path);
      this.lastFree = Number(stats.bavail) * Number(stats.bsize);
    } catch {
      this.lastFree = undefined;
    }
    this.checkedAt = now;
    return this.lastFree;
  }

  /** True when there is too little room for new mail (below `minFree`, by default the one given at start). An unanswerable statfs does not block mail. */
  async isLow(minFree = this.minFree): Promise<boolean> {
    const free = await this.freeBytes();
    return free !== undefined && free < minFree;
  }
}
