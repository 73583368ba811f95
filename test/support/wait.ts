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

/** The message once every job is final; on timeout the error lists each job's domain, state and last reason. */
export async function waitForFinal(store: Store, id: string, timeoutMs: number): Promise<MessageRecord> {
  try {
    return await until(`message ${id} to be final`, finalMessage(store, id), timeoutMs, 200);
  } catch (error) {
    const message = await store.getMessage(id).catch(() => null);
    throw new Error(`${(error as Error).message}: ${JSON.stringify(message?.jobs.map((j) => [j.domain, j.state, j.lastReason]))}`, { cause: error });
  }
}
