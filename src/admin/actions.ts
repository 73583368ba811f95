import { FallbackService, type FallbackBackend } from '../fallback';
import { InvalidStateError, NotFoundError, type FallbackItem, type MessageRecord, type QueueAdmin } from '../store/types';

/**
 * The admin actions that change state, shared by the HTTP API and the CLI. Each checks that the
 * action makes sense first, so "nothing to do" is an error the caller sees (409 / exit 1), not a no-op.
 * Errors are typed store errors: NotFoundError ('not-found': 404 / exit 6), InvalidStateError
 * ('wrong-state' or 'handed-over': 409 / exit 1).
 */

/** The action is not possible in the item's current state (HTTP 409, CLI exit 1). */
export { InvalidStateError };

export type { AdminActionEntry } from '../evidence/audit-log';

export type MessageAction = 'hold' | 'release' | 'retry' | 'delete';

const WAITING = new Set(['queued', 'deferred', 'leased']);

async function requireMessage(store: QueueAdmin, id: string): Promise<MessageRecord> {
  const message = await store.getMessage(id);
  if (!message) throw new NotFoundError(`no message with queue id ${id}`);
  return message;
}

/** Applies one action to every non-final job of a message; returns the message afterwards (undefined once deleted). */
export async function applyMessageAction(store: QueueAdmin, action: MessageAction, id: string): Promise<MessageRecord | undefined> {
  const message = await requireMessage(store, id);
  const states = message.jobs.map((j) => j.state);
  const describe = `message ${id} is ${[...new Set(states)].join(', ') || 'empty'}`;
  switch (action) {
    case 'hold':
      if (!states.some((s) => WAITING.has(s))) throw new InvalidStateError(`${describe}: nothing waiting to hold`);
      return store.hold(id);
    case 'release':
      if (!states.includes('held')) throw new InvalidStateError(`${describe}: nothing held to release`);
      return store.release(id);
    case 'retry':
      if (!states.some((s) => WAITING.has(s) || s === 'held')) throw new InvalidStateError(`${describe}: nothing left to retry`);
      return store.retryNow(id);
    case 'delete':
      await store.deleteMessage(id);
      return undefined;
  }
}

export type FallbackAction = 'release' | 'delete';

/** Releases a fallback item back to delivery, or deletes it (the fallback module decides; see FallbackService). */
export function applyFallbackAction(store: FallbackBackend, action: FallbackAction, id: string): Promise<FallbackItem> {
  const fallback = new FallbackService(store);
  return action === 'release' ? fallback.release(id) : fallback.delete(id);
}
