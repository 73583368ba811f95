import { createHash } from 'node:crypto';
import { StoreError } from './errors';
import type { PortalEvent, PortalEventInput } from './model';

/** An item's stored trail has an entry that is not an event at all (not JSON): damage or tampering. */
export class PortalTrailDamagedError extends StoreError {
  override name = 'PortalTrailDamagedError';
  constructor(
    readonly itemId: string,
    readonly seq: number,
  ) {
    super('internal', `portal trail of ${itemId} is damaged at entry ${seq}: not a JSON event`);
  }
}

/** Parses one stored trail entry (the seq-th); PortalTrailDamagedError when it is not JSON. */
export function parsePortalEvent(itemId: string, seq: number, text: string): PortalEvent {
  try {
    const event = JSON.parse(text) as unknown;
    if (event !== null && typeof event === 'object' && !Array.isArray(event)) return event as PortalEvent;
  } catch {
    // reported below
  }
  throw new PortalTrailDamagedError(itemId, seq);
}

/** prevHash of an item's first event. */
export const GENESIS_HASH = '0'.repeat(64);

/** JSON with object keys sorted at every level and undefined members left out: one text per value. */
export function canonicalJson(value: unknown): string {
  // Every evidence record and portal event is hashed through this: built by concatenation, with no arrays of
  // entries in between. Object.keys lists what Object.entries would, and the default sort compares UTF-16 code
  // units, as `<` does.
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      out += `${i === 0 ? '' : ','}${v === undefined ? 'null' : canonicalJson(v)}`;
    }
    return `${out}]`;
  }
  const object = value as Record<string, unknown>;
  const keys = Object.keys(object).sort();
  let out = '{';
  let first = true;
  for (const key of keys) {
    const v = object[key];
    if (v === undefined) continue;
    out += `${first ? '' : ','}${JSON.stringify(key)}:${canonicalJson(v)}`;
    first = false;
  }
  return `${out}}`;
}

/** SHA-256 hex of prevHash + the canonical JSON of the event without its hash. */
export function portalEventHash(event: Omit<PortalEvent, 'hash'> | PortalEvent): string {
  const { hash: _hash, ...rest } = event as PortalEvent;
  return createHash('sha256')
    .update(rest.prevHash + canonicalJson(rest), 'utf8')
    .digest('hex');
}

/** The stored form of the next event of an item's trail. Both backends build every event with this. */
export function chainPortalEvent(itemId: string, previous: PortalEvent | undefined, input: PortalEventInput): PortalEvent {
  const { at, type, actor, ip, uaHash, detail } = input;
  const event: Omit<PortalEvent, 'hash'> = {
    itemId,
    seq: (previous?.seq ?? 0) + 1,
    at,
    type,
    actor,
    ...(ip !== undefined ? { ip } : {}),
    ...(uaHash !== undefined ? { uaHash } : {}),
    ...(detail !== undefined ? { detail } : {}),
    prevHash: previous?.hash ?? GENESIS_HASH,
  };
  return { ...event, hash: portalEventHash(event) };
}

export type ChainCheck = { ok: true; events: number } | { ok: false; seq: number; reason: string };

/** Checks a trail oldest first: item, numbering, links and hashes. Names the first entry that is wrong. */
export function verifyPortalChain(itemId: string, events: readonly PortalEvent[]): ChainCheck {
  let prevHash = GENESIS_HASH;
  for (let i = 0; i < events.length; i++) {
    const event = events[i]!;
    const seq = i + 1;
    if (event.seq !== seq) return { ok: false, seq, reason: `entry ${seq} carries sequence number ${String(event.seq)}: an entry was removed, added or moved` };
    if (event.itemId !== itemId) return { ok: false, seq, reason: `entry ${seq} belongs to item ${String(event.itemId)}` };
    if (event.prevHash !== prevHash) return { ok: false, seq, reason: `entry ${seq} does not link to the entry before it` };
    if (portalEventHash(event) !== event.hash) return { ok: false, seq, reason: `entry ${seq} was changed after it was written (hash mismatch)` };
    prevHash = event.hash;
  }
  return { ok: true, events: events.length };
}

/** Whether an item matches a PortalFilter's conditions (paging aside). */
export function matchesPortalFilter(item: { state: string; expiresAt: number }, filter: { state?: string; expiresBefore?: number }): boolean {
  return (filter.state === undefined || item.state === filter.state) && (filter.expiresBefore === undefined || item.expiresAt <= filter.expiresBefore);
}

/** Oldest first, ties by id. */
export function byCreation(a: { createdAt: number; id: string }, b: { createdAt: number; id: string }): number {
  return a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/**
 * The record with its key material cleared (crypto-shredding). The link token's hash stays: it is no key, and
 * it lets the link show "this message has expired" (or withdrawn, delivered) instead of "link not found".
 */
export function shreddedItem<T extends { kid: string | null; wrappedKey: string | null; sealed: string | null }>(item: T): T {
  return { ...item, kid: null, wrappedKey: null, sealed: null };
}

/** Portal ids become file names and key parts: letters, digits, dot, dash, underscore; no leading dot. */
export function validPortalId(id: string): boolean {
  return /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/.test(id);
}
