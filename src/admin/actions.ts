import { FallbackService, type FallbackBackend } from '../fallback';
import { FINAL_STATES as PORTAL_FINAL_STATES, type PortalItemView, type PortalService } from '../portal/service';
import { InvalidStateError, isStoreError, NotFoundError, type FallbackFilter, type FallbackItem, type MessageRecord, type QueueAdmin } from '../store/types';
import { planAction, selectionFilter, selectionScope, selectionView, type BulkAction, type Selection } from './selection';

export type { BulkAction, Selection } from './selection';

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
  if (message.deletedAt !== undefined) throw new NotFoundError(`message ${id} was deleted at ${new Date(message.deletedAt).toISOString()}; only its delivery evidence is kept (sealgate audit ${id})`);
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

/** What a bulk action did: the messages it matched, those it changed and those it skipped (with why). */
export interface BulkOutcome {
  action: BulkAction;
  selection: Record<string, string | number | boolean>;
  matched: number;
  affected: string[];
  skipped: Array<{ id: string; reason: string }>;
}

/** The matching messages (metadata only, never bodies) and what the action would do to each. */
export async function previewBulkAction(store: QueueAdmin, action: BulkAction, selection: Selection): Promise<{ apply: MessageRecord[]; skipped: BulkOutcome['skipped'] }> {
  const messages = await store.listMessages(selectionFilter(selection));
  const apply: MessageRecord[] = [];
  const skipped: BulkOutcome['skipped'] = [];
  for (const message of messages) {
    const plan = planAction(action, message, selection);
    if (plan.apply) apply.push(message);
    else skipped.push({ id: message.id, reason: plan.reason });
  }
  return { apply, skipped };
}

/**
 * Applies one action to every message of a selection; `onApplied` runs after each change (the caller records
 * the per-message audit entry the single action writes). A message that changed in between (gone, delivered,
 * leased) is skipped with the store's reason, never failing the whole run; a store outage still throws.
 */
export async function applyBulkAction(store: QueueAdmin, action: BulkAction, selection: Selection, onApplied?: (id: string) => void | Promise<void>): Promise<BulkOutcome> {
  const { apply, skipped } = await previewBulkAction(store, action, selection);
  const matched = apply.length + skipped.length;
  const scope = selectionScope(selection);
  const affected: string[] = [];
  for (const message of apply) {
    try {
      if (action === 'hold') await store.hold(message.id, scope);
      else if (action === 'release') await store.release(message.id, scope);
      else if (action === 'retry') await store.retryNow(message.id, scope);
      else await store.deleteMessage(message.id);
    } catch (err) {
      if (!isStoreError(err) || isStoreError(err, 'unavailable')) throw err;
      skipped.push({ id: message.id, reason: isStoreError(err, 'not-found') ? 'gone in the meantime' : (err as Error).message });
      continue;
    }
    affected.push(message.id);
    await onApplied?.(message.id);
  }
  return { action, selection: selectionView(selection), matched, affected, skipped };
}

/** The built-in portal's side of a fallback release: its copy of an item (same id), release or withdraw it. */
export type PortalOwner = Pick<PortalService, 'show' | 'release' | 'purge'>;

export interface FallbackReleaseOutcome {
  selection: Record<string, string | number>;
  matched: number;
  /** via 'delivery': the recipient is back in its message's delivery; 'portal': the portal copy went out as newQueueId. */
  released: Array<{ id: string; queueId: string; recipient: string; via: 'delivery' | 'portal'; newQueueId?: string; withdrawn?: boolean }>;
  skipped: Array<{ id: string; reason: string }>;
}

async function portalCopy(portal: PortalOwner | undefined, id: string): Promise<PortalItemView | undefined> {
  if (!portal) return undefined;
  try {
    return (await portal.show(id)).item;
  } catch (err) {
    if (isStoreError(err, 'not-found')) return undefined;
    throw err;
  }
}

/**
 * Puts every fallback item of a filter (e.g. one domain, after its partner fixed TLS) back into delivery, never
 * leaving a message both in the portal and re-delivered:
 * - not handed over (ready, or claimed by an external portal): the recipient goes back into its message's
 *   delivery; a built-in portal copy left by an interrupted hand-over is purged (crypto-shredded) right after;
 * - handed over to the built-in portal (acked, copy live): released the way `sealgate portal release` does
 *   (the copy goes out by SMTP as a new message and is shredded);
 * - being handed over to the built-in portal right now (unexpired claim by portal:*), handed over to an external
 *   portal, or a copy already final: skipped with the reason.
 */
export async function releaseFallbackSelection(
  store: FallbackBackend,
  filter: FallbackFilter,
  portal: PortalOwner | undefined,
  actor: string,
  onReleased?: (entry: FallbackReleaseOutcome['released'][number]) => void | Promise<void>,
  now = Date.now,
): Promise<FallbackReleaseOutcome> {
  const fallback = new FallbackService(store);
  const items = await fallback.list(filter);
  const released: FallbackReleaseOutcome['released'] = [];
  const skipped: FallbackReleaseOutcome['skipped'] = [];
  for (const item of items) {
    try {
      const copy = await portalCopy(portal, item.id);
      const live = copy !== undefined && !PORTAL_FINAL_STATES.includes(copy.state);
      let entry: FallbackReleaseOutcome['released'][number];
      if (item.state === 'acked') {
        if (!copy) {
          skipped.push({ id: item.id, reason: 'handed over to an external portal (acknowledged); it cannot be taken back from here' });
          continue;
        }
        if (!live) {
          skipped.push({ id: item.id, reason: `handed over to the portal; its copy is already ${copy.state}` });
          continue;
        }
        const { queueId } = await portal!.release(item.id, actor);
        entry = { id: item.id, queueId: item.queueId, recipient: item.recipient, via: 'portal', newQueueId: queueId };
      } else if (item.state === 'claimed' && item.claim?.owner.startsWith('portal:') && item.claim.expiresAt > now()) {
        skipped.push({ id: item.id, reason: `being handed over to the built-in portal right now (${item.claim.owner}); try again in a moment` });
        continue;
      } else {
        await fallback.release(item.id);
        entry = { id: item.id, queueId: item.queueId, recipient: item.recipient, via: 'delivery' };
        if (live) {
          await portal!.purge(item.id, actor);
          entry.withdrawn = true;
        }
      }
      released.push(entry);
      await onReleased?.(entry);
    } catch (err) {
      if (!isStoreError(err) || isStoreError(err, 'unavailable')) throw err;
      skipped.push({ id: item.id, reason: isStoreError(err, 'not-found') ? 'gone in the meantime' : (err as Error).message });
    }
  }
  const selection: Record<string, string | number> = {};
  for (const [key, value] of Object.entries(filter)) if (value !== undefined && key !== 'limit' && key !== 'offset') selection[key] = value as string | number;
  return { selection, matched: items.length, released, skipped };
}
