import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log/logger';
import { isStoreError } from '../store/types';

/** How long what a delivery attempt produced is held while the store is unavailable. */
export const STORE_RETRY_MS = 10 * 60_000;

export interface StoreRetry {
  /** The warn line's event name, e.g. `complete-retry`. */
  event: string;
  logger: Logger;
  /** Fields for the warn line (ids only). */
  fields?: Record<string, unknown>;
  /** Stop retrying once aborted (shutdown). */
  signal?: AbortSignal;
  maxMs?: number;
}

/**
 * Runs a store write, retrying it while the store is unavailable (a Redis restart): 0.5 s doubling to 5 s,
 * for up to STORE_RETRY_MS, never past an abort. What an attempt produced (its result, its DSN) is held
 * and written once the store answers, rather than dropped (a lost DSN) or redone (a second delivery).
 * Any other error is thrown at once.
 */
export async function retryWhileUnavailable<T>(write: () => Promise<T>, retry: StoreRetry): Promise<T> {
  const giveUpAt = Date.now() + (retry.maxMs ?? STORE_RETRY_MS);
  for (let delay = 500; ; delay = Math.min(delay * 2, 5_000)) {
    try {
      return await write();
    } catch (err) {
      if (!isStoreError(err, 'unavailable') || retry.signal?.aborted || Date.now() + delay > giveUpAt) throw err;
      retry.logger.warn({ event: retry.event, ...retry.fields, retryInMs: delay, err: (err as Error).message }, 'the store is unavailable: holding the write and retrying');
      await sleep(delay, undefined, { ref: false });
    }
  }
}
