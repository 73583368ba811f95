import { pipeline, Transform, type Readable, type TransformCallback } from 'node:stream';
import type { EvidenceSubject, PortalEventEvidence } from '../evidence/recorder';
import { PortalTrailDamagedError, verifyPortalChain } from '../store/portal-chain';
import { InvalidStateError, type KeyValueCache, type PortalEvent, type PortalEventInput, type PortalFilter, type PortalItem, type PortalSealedFacts, type PortalStore } from '../store/types';
import { CHUNK_SIZE, decryptStream, encryptStream, newDataKey, newLinkToken, PortalKeyError, seal, tokenHash, unseal, type Keyring } from './crypto';

export type PortalCopiesStore = PortalStore & Pick<KeyValueCache, 'cacheGet' | 'cacheSet' | 'cacheDelete' | 'cacheIncrement'>;

export interface PortalCopiesOptions {
  /** Plaintext bytes per ciphertext chunk for new copies (default CHUNK_SIZE; tests use small ones). */
  chunkSize?: number;
  /** Mirrors every trail entry into the evidence log, with the item's queue id and (while unshredded) recipient. */
  evidence?: PortalEventEvidence;
}

const ignore = (): void => undefined;

/** The evidence-log keys of a portal item: never the subject or anything else sealed but the addresses and ids. */
function subjectOf(item: Pick<PortalItem, 'queueId'>, facts: PortalSealedFacts | undefined): EvidenceSubject {
  return { queueId: item.queueId, recipient: facts?.recipient ?? null, sender: facts?.from ?? null, messageId: facts?.messageId ?? null };
}

/**
 * The portal's data layer: every diverted recipient's copy encrypted under its own data key (wrapped by the
 * keyring's current key-encryption key), its facts sealed, its link stored only as a hash, its trail
 * hash-chained. Nothing readable reaches the store.
 */
export class PortalCopies {
  private readonly chunkSize: number;
  private readonly evidence: PortalEventEvidence | undefined;

  constructor(
    private readonly store: PortalCopiesStore,
    private readonly keyring: Keyring,
    private readonly now: () => number = Date.now,
    options: PortalCopiesOptions = {},
  ) {
    this.chunkSize = options.chunkSize ?? CHUNK_SIZE;
    this.evidence = options.evidence;
  }

  /** Encrypts one diverted recipient's message (the queue body) into a portal copy, state 'stored', with a live link token (returned once, stored only as a hash); records 'portal.stored'. Same fallback id again replaces the copy (crash replay). */
  async create(input: {
    fallbackId: string;
    queueId: string;
    jobId: string;
    facts: PortalSealedFacts;
    body: Readable;
    expiresAt: number;
    auth: PortalItem['auth'];
    actor?: string;
  }): Promise<{ item: PortalItem; token: string }> {
    const id = input.fallbackId;
    // Another process may have rotated the key file: wrap under the key that is current now. The body is
    // already open, so hold on to an error it raises meanwhile instead of letting it go unhandled.
    const early: { error?: Error } = {};
    const holdError = (error: Error) => (early.error = error);
    input.body.once('error', holdError);
    try {
      await this.keyring.refresh?.();
    } finally {
      input.body.off('error', holdError);
    }
    if (early.error) throw early.error;
    const dataKey = newDataKey();
    try {
      const { kid, wrappedKey } = this.keyring.wrap(dataKey);
      const token = newLinkToken();
      const now = this.now();
      const item: PortalItem = {
        id,
        queueId: input.queueId,
        jobId: input.jobId,
        recipientHash: this.keyring.recipientHash(input.facts.recipient),
        kid,
        wrappedKey,
        sealed: seal(dataKey, id, input.facts),
        tokenHash: tokenHash(token),
        state: 'stored',
        size: 0,
        chunkSize: this.chunkSize,
        auth: input.auth,
        createdAt: now,
        expiresAt: input.expiresAt,
        updatedAt: now,
        version: 1,
      };
      // The plaintext size is counted on the way through; the store writes the record once the stream ended.
      const count = new Transform({
        transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
          item.size += chunk.length;
          callback(null, chunk);
        },
      });
      const ciphertext = pipeline(input.body, count, encryptStream(dataKey, id, this.chunkSize), ignore);
      await this.store.putPortalCopy(item, ciphertext);
      await this.append(id, { at: now, type: 'portal.stored', actor: input.actor ?? 'relay', detail: { size: item.size, kid } }, subjectOf(item, input.facts));
      return { item: { ...item }, token };
    } finally {
      dataKey.fill(0);
    }
  }

  get(id: string): Promise<PortalItem | undefined> {
    return this.store.getPortalItem(id);
  }

  /** The item whose live link this token is (undefined for unknown tokens). */
  async byToken(token: string): Promise<PortalItem | undefined> {
    if (typeof token !== 'string' || token.length === 0) return undefined;
    // A recipient's visit starts here: pick up a key file another process rotated, so facts() can unwrap.
    await this.keyring.refresh?.();
    return this.store.findPortalItemByToken(tokenHash(token));
  }

  list(filter?: PortalFilter): Promise<PortalItem[]> {
    return this.store.listPortalItems(filter);
  }

  /** Unsealed facts (recipient, from, subject, ...); PortalKeyError once shredded. */
  facts(item: PortalItem): PortalSealedFacts {
    if (item.sealed === null) throw new PortalKeyError(`portal item ${item.id} was shredded`);
    const dataKey = this.dataKey(item);
    try {
      return unseal<PortalSealedFacts>(dataKey, item.id, item.sealed);
    } finally {
      dataKey.fill(0);
    }
  }

  /** The decrypted message (RFC 5322 bytes), streamed. The stream errors if the ciphertext was altered. */
  async openMessage(item: PortalItem): Promise<Readable> {
    await this.keyring.refresh?.();
    const dataKey = this.dataKey(item);
    const source = await this.store.openPortalCiphertext(item.id);
    return pipeline(source, decryptStream(dataKey, item.id, item.chunkSize), ignore);
  }

  /** Replaces the link token (resend): the old link stops working at once. */
  async newToken(id: string): Promise<{ item: PortalItem; token: string }> {
    const token = newLinkToken();
    const item = await this.update(id, (current) => {
      if (current.wrappedKey === null) throw new InvalidStateError(`portal item ${id} was shredded; it can have no link`);
      return { ...current, tokenHash: tokenHash(token) };
    });
    return { item, token };
  }

  /** Read-modify-write of the record (retried on concurrent changes, so `mutate` must be pure); sets updatedAt. */
  update(id: string, mutate: (item: PortalItem) => PortalItem): Promise<PortalItem> {
    return this.store.updatePortalItem(id, (current) => ({ ...mutate(current), updatedAt: this.now() }));
  }

  record(id: string, event: PortalEventInput): Promise<PortalEvent> {
    return this.append(id, event);
  }

  /**
   * Appends to the item's trail, then (with `evidence`) mirrors the stored entry into the evidence log, awaited:
   * an entry the evidence log refused fails the operation like a trail write would. `subject` is given when the
   * caller knows the facts (at creation, or read before a shred); else they are read from the item.
   */
  private async append(id: string, event: PortalEventInput, subject?: EvidenceSubject): Promise<PortalEvent> {
    const stored = await this.store.appendPortalEvent(id, event);
    if (this.evidence) await this.evidence.recordPortalEvent(stored, subject ?? (await this.subject(id)));
    return stored;
  }

  /** The evidence keys of an item: its queue id, and the recipient, sender and Message-ID while its facts can be unsealed. */
  private async subject(id: string): Promise<EvidenceSubject> {
    const item = await this.get(id);
    if (!item) return {};
    try {
      return subjectOf(item, item.sealed === null ? undefined : this.facts(item));
    } catch (err) {
      // Shredded meanwhile, or its key retired: the queue id still ties the entry to its message.
      if (err instanceof PortalKeyError) return subjectOf(item, undefined);
      throw err;
    }
  }

  events(id: string): Promise<PortalEvent[]> {
    return this.store.portalEvents(id);
  }

  /**
   * Sets the final state, then crypto-shreds (wrapped key first, then ciphertext); records the event given.
   * The link's token hash stays, so the link shows the final state's page ("this message has expired").
   */
  async shred(id: string, state: 'expired' | 'purged' | 'released', event: PortalEventInput): Promise<PortalItem> {
    // The facts are unreadable once shredded: take the evidence keys first.
    const subject = this.evidence ? await this.subject(id) : undefined;
    await this.update(id, (item) => ({ ...item, state }));
    await this.store.shredPortalCopy(id);
    await this.append(id, event, subject);
    const item = await this.get(id);
    if (!item) throw new InvalidStateError(`portal item ${id} disappeared while being shredded`);
    return item;
  }

  /**
   * Rewraps every live data key under the keyring's current KEK (re-reading the key file first when the keyring
   * can); returns how many moved. With `event`, records it on every item that moved (e.g. 'key.rotated').
   */
  async rewrapAll(event?: PortalEventInput): Promise<number> {
    await this.keyring.reload?.();
    const current = this.keyring.currentKid;
    let moved = 0;
    for (const listed of await this.store.listPortalItems()) {
      if (listed.kid === null || listed.wrappedKey === null || listed.kid === current) continue;
      // Set by the last (successful) run of the mutation, which may be retried.
      const change: { from: string | null } = { from: null };
      await this.store.updatePortalItem(listed.id, (item) => {
        change.from = null;
        if (item.kid === null || item.wrappedKey === null || item.kid === current) return item;
        const dataKey = this.keyring.unwrap(item.kid, item.wrappedKey);
        try {
          const wrapped = this.keyring.wrap(dataKey);
          change.from = item.kid;
          return { ...item, kid: wrapped.kid, wrappedKey: wrapped.wrappedKey, updatedAt: this.now() };
        } finally {
          dataKey.fill(0);
        }
      });
      if (change.from === null) continue;
      moved++;
      if (event) await this.record(listed.id, { ...event, detail: { ...event.detail, from: change.from, to: current } });
    }
    return moved;
  }

  /** The key-encryption key ids live items still use (for retireKeyEncryptionKeys after a rewrap). */
  async kidsInUse(): Promise<Set<string>> {
    const kids = new Set<string>();
    for (const item of await this.store.listPortalItems()) if (item.kid !== null && item.wrappedKey !== null) kids.add(item.kid);
    return kids;
  }

  /** Checks the item's hash chain; names the first broken entry. */
  async verifyTrail(id: string): Promise<{ ok: true; events: number } | { ok: false; seq: number; reason: string }> {
    try {
      return verifyPortalChain(id, await this.store.portalEvents(id));
    } catch (error) {
      if (error instanceof PortalTrailDamagedError) return { ok: false, seq: error.seq, reason: `entry ${error.seq} is not a readable event (damaged or edited)` };
      throw error;
    }
  }

  private dataKey(item: PortalItem): Buffer {
    if (item.kid === null || item.wrappedKey === null) throw new PortalKeyError(`portal item ${item.id} was shredded`);
    return this.keyring.unwrap(item.kid, item.wrappedKey);
  }
}
