import type { MessageRecord, Store } from '../../src/store/types';

/** Polls `probe` until it returns a value (not undefined), or fails naming `what` after `timeoutMs`. */
export async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs: number, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** A probe for `until`: the message once every one of its jobs is final (delivered, diverted, bounced). */
export function finalMessage(store: Store, id: string): () => Promise<MessageRecord | undefined> {
  return async () => {
    const message = await store.getMessage(id);
    return message && message.jobs.every((j) => ['delivered', 'diverted', 'bounced'].includes(j.state)) ? message : undefined;
  };
}
