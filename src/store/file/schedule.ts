/**
 * In-memory schedule of waiting jobs for one relay process: a min-heap of (dueAt, jobId) with lazy
 * deletion, so claiming due jobs never scans the spool. It is only a hint: every claim is checked
 * against the message's metadata on disk.
 */
export class Schedule {
  private readonly dueAt = new Map<string, number>();
  private readonly heap: Array<{ at: number; jobId: string }> = [];

  set(jobId: string, at: number): void {
    if (this.dueAt.get(jobId) === at) return;
    this.dueAt.set(jobId, at);
    this.push({ at, jobId });
  }

  delete(jobId: string): void {
    this.dueAt.delete(jobId);
  }

  /** Every job id waiting in the schedule (due or not). */
  ids(): IterableIterator<string> {
    return this.dueAt.keys();
  }

  has(jobId: string): boolean {
    return this.dueAt.has(jobId);
  }

  /** Removes and returns up to `limit` job ids due at `now`, earliest first, skipping those `skip` rejects. */
  takeDue(now: number, limit: number, skip: (jobId: string) => boolean): string[] {
    const out: string[] = [];
    while (out.length < limit && this.heap.length > 0) {
      const top = this.heap[0]!;
      if (this.dueAt.get(top.jobId) !== top.at) {
        this.pop();
        continue;
      }
      if (top.at > now) break;
      this.pop();
      this.dueAt.delete(top.jobId);
      if (!skip(top.jobId)) out.push(top.jobId);
    }
    // Stale entries pile up under lazy deletion; rebuild once they dominate.
    if (this.heap.length > 1024 && this.heap.length > 4 * this.dueAt.size) this.rebuild();
    return out;
  }

  private rebuild(): void {
    this.heap.length = 0;
    for (const [jobId, at] of this.dueAt) this.push({ at, jobId });
  }

  private push(entry: { at: number; jobId: string }): void {
    const heap = this.heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]!.at <= entry.at) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = entry;
  }

  private pop(): void {
    const heap = this.heap;
    const last = heap.pop()!;
    if (heap.length === 0) return;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && heap[right]!.at < heap[left]!.at ? right : left;
      if (heap[child]!.at >= last.at) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = last;
  }
}
