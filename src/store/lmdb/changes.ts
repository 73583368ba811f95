import type { LmdbEnv } from './env';

/** How often a process looks for other processes' changes (a cheap read of a small sub-database). */
export const CHANGE_POLL_MS = 1000;

/**
 * The cross-process notice: every admin write and every message queued by another process (the CLI sending a
 * TLS report) appends the id to the `changes` sub-database in the same transaction, so the relay (which keeps a
 * schedule in memory) reads those messages without a restart.
 * Only the relay (the process holding the spool lock: `consumer`) reads the notices, and removes those it
 * handled; it skips its own (its index already has them). Other processes re-read the messages instead (spool.ts).
 */
export class LmdbChanges {
  private counter = 0;
  private lastPoll = 0;

  constructor(
    private readonly env: LmdbEnv,
    readonly consumer: boolean,
  ) {}

  /** At open, before the scan: the scan sees every change made so far, so the notices up to now are done with. */
  async startFrom(): Promise<void> {
    this.lastPoll = Date.now();
    if (!this.consumer) return;
    const keys = [...this.env.changes.getKeys()];
    if (keys.length > 0) await this.env.root.transaction(() => keys.forEach((key) => this.env.changes.removeSync(key)));
  }

  /**
   * Inside a write transaction: notes that `id` changed (a message id, or `f:<item id>`). The relay's own changes
   * need no notice: its index has them, and no other process reads notices.
   */
  note(id: string): void {
    if (this.consumer) return;
    this.env.changes.putSync([Date.now(), process.pid, this.counter++], id);
  }

  /** Ids other processes changed since the last poll; call done() once they were read again. */
  poll(force = false): { ids: string[]; done: () => Promise<void> } {
    const now = Date.now();
    if (!this.consumer || (!force && now - this.lastPoll < CHANGE_POLL_MS)) return { ids: [], done: async () => undefined };
    this.lastPoll = now;
    // lmdb-js may keep reading an older snapshot; another process's commit shows after a reset.
    this.env.root.resetReadTxn();
    const entries = [...this.env.changes.getRange()];
    const ids = new Set<string>();
    for (const { key, value } of entries) if (key[1] !== process.pid) ids.add(value);
    const done = async (): Promise<void> => {
      if (entries.length === 0) return;
      // Losing this removal only makes the next poll read the same messages again.
      await this.env.root.transaction(() => entries.forEach(({ key }) => this.env.changes.removeSync(key)));
    };
    return { ids: [...ids], done };
  }
}
