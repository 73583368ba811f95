import type { Readable } from 'node:stream';
import type { FallbackStore, JobQueue } from '../store/roles';
import type { FallbackFilter, FallbackItem, FallbackState } from '../store/types';
import { alreadyHandedOver, itemNotFound } from './errors';

/** What the fallback module needs from the store: the fallback role, and message bodies for hand-over. */
export type FallbackBackend = FallbackStore & Pick<JobQueue, 'openBody'>;

export const FALLBACK_STATES: readonly FallbackState[] = ['ready', 'claimed', 'acked'];

export function isFallbackState(value: string): value is FallbackState {
  return (FALLBACK_STATES as readonly string[]).includes(value);
}

export interface FallbackPage {
  items: FallbackItem[];
  total: number;
}

/**
 * The life cycle of recipients diverted to the secure-portal fallback, after delivery created their items
 * (the store writes an item in the same step as the job result that diverted the recipient):
 *
 *   ready ──claim──▶ claimed ──ack (claim owner)──▶ acked (handed over; the body may then be swept)
 *     ▲                │ claim expires: claimable again
 *     └────────────────┘
 *   ready | claimed ──release──▶ (item dropped, recipient back in delivery)   acked ──release──▶ 'handed-over'
 *   any ──delete──▶ (item dropped)
 *
 * The admin API and the CLI are thin callers of this class. Errors are typed (errors.ts).
 */
export class FallbackService {
  constructor(private readonly store: FallbackBackend) {}

  /** Items oldest first, optionally in one state. */
  list(filter: FallbackFilter = {}): Promise<FallbackItem[]> {
    return this.store.listFallback(filter);
  }

  /** One page of the items matching the filter (state, domain, recipient, since), with how many there are in all. */
  async page(query: Omit<FallbackFilter, 'state' | 'limit' | 'offset'> & { state?: FallbackState | undefined; limit: number; offset: number }): Promise<FallbackPage> {
    const { limit: _limit, offset: _offset, state, ...rest } = query;
    const all = await this.store.listFallback(state === undefined ? rest : { ...rest, state });
    return { items: all.slice(query.offset, query.offset + query.limit), total: all.length };
  }

  /** The item, or undefined. */
  find(id: string): Promise<FallbackItem | undefined> {
    return this.store.getFallback(id);
  }

  /** The item; NotFoundError ('not-found') when there is none. */
  async show(id: string): Promise<FallbackItem> {
    const item = await this.store.getFallback(id);
    if (!item) throw itemNotFound(id);
    return item;
  }

  /** A portal claims up to `limit` ready items (or items whose claim expired) for `leaseMs`. */
  claim(owner: string, limit: number, leaseMs: number, now?: number): Promise<FallbackItem[]> {
    return this.store.claimFallback(owner, limit, leaseMs, now);
  }

  /** The original message of an item, byte for byte; 'not-found' when the item or its body is gone. */
  async openBody(id: string): Promise<{ item: FallbackItem; body: Readable }> {
    const item = await this.show(id);
    return { item, body: await this.store.openBody(item.queueId) };
  }

  /** The claim owner says the portal took the message over ('lease-lost' for anyone else, 'not-found'). */
  ack(id: string, owner: string): Promise<void> {
    return this.store.ackFallback(id, owner);
  }

  /**
   * Puts the recipient back into delivery and drops the item; refused with 'handed-over' once a portal
   * acknowledged it (also when that happens between this check and the store's own).
   */
  async release(id: string): Promise<FallbackItem> {
    const item = await this.show(id);
    if (item.state === 'acked') throw alreadyHandedOver(id);
    await this.store.releaseFallback(id);
    return item;
  }

  /** Deletes the item (the recipient is not delivered); returns it as it was. */
  async delete(id: string): Promise<FallbackItem> {
    const item = await this.show(id);
    await this.store.deleteFallback(id);
    return item;
  }
}
