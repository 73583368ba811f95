import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { CopiesPort, NoticePort, ServiceNotice } from '../../../src/portal/service';
import { NotFoundError, type PortalEvent, type PortalEventInput, type PortalFilter, type PortalItem, type PortalSealedFacts } from '../../../src/store/types';

/**
 * In-memory PortalCopies with the documented behaviour: create replaces a copy with the same fallback id
 * (new token), tokens are kept only as hashes, shred clears keys, facts and token and then the ciphertext,
 * events form a SHA-256 hash chain. "Encryption" is a plain copy: these tests are about the life cycle.
 */
export class FakeCopies implements CopiesPort {
  readonly items = new Map<string, PortalItem>();
  readonly bodies = new Map<string, Buffer>();
  readonly facts_ = new Map<string, PortalSealedFacts>();
  readonly trails = new Map<string, PortalEvent[]>();
  kid = 'k1';
  rewrapCalls = 0;

  constructor(private readonly now: () => number = Date.now) {}

  async create(input: Parameters<CopiesPort['create']>[0]): Promise<{ item: PortalItem; token: string }> {
    const parts: Buffer[] = [];
    for await (const chunk of input.body) parts.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
    const body = Buffer.concat(parts);
    const token = randomBytes(32).toString('base64url');
    const at = this.now();
    const item: PortalItem = {
      id: input.fallbackId,
      queueId: input.queueId,
      jobId: input.jobId,
      recipientHash: createHash('sha256').update(input.facts.recipient.toLowerCase()).digest('hex'),
      kid: this.kid,
      wrappedKey: 'wrapped',
      sealed: 'sealed',
      tokenHash: tokenHash(token),
      state: 'stored',
      size: body.length,
      chunkSize: 65_536,
      auth: input.auth,
      createdAt: at,
      expiresAt: input.expiresAt,
      updatedAt: at,
      version: 1,
    };
    this.items.set(item.id, item);
    this.bodies.set(item.id, body);
    this.facts_.set(item.id, { ...input.facts });
    await this.record(item.id, { at, type: 'portal.stored', actor: input.actor ?? 'relay', detail: { size: body.length } });
    return { item: { ...item }, token };
  }

  async get(id: string): Promise<PortalItem | undefined> {
    const item = this.items.get(id);
    return item && { ...item };
  }

  async list(filter: PortalFilter = {}): Promise<PortalItem[]> {
    return [...this.items.values()]
      .filter((i) => (filter.state === undefined || i.state === filter.state) && (filter.expiresBefore === undefined || i.expiresAt <= filter.expiresBefore))
      .sort((a, b) => a.createdAt - b.createdAt)
      .map((i) => ({ ...i }));
  }

  facts(item: PortalItem): PortalSealedFacts {
    const facts = this.items.get(item.id)?.sealed ? this.facts_.get(item.id) : undefined;
    if (!facts) throw new Error(`portal item ${item.id} is shredded`);
    return { ...facts };
  }

  async openMessage(item: PortalItem): Promise<Readable> {
    const body = this.bodies.get(item.id);
    if (!body) throw new NotFoundError(`no ciphertext for ${item.id}`);
    return Readable.from([body]);
  }

  async newToken(id: string): Promise<{ item: PortalItem; token: string }> {
    const token = randomBytes(32).toString('base64url');
    const item = await this.update(id, (i) => ({ ...i, tokenHash: tokenHash(token) }));
    return { item, token };
  }

  async update(id: string, mutate: (item: PortalItem) => PortalItem): Promise<PortalItem> {
    const current = this.items.get(id);
    if (!current) throw new NotFoundError(`no portal item ${id}`);
    const next = { ...mutate({ ...current }), version: current.version + 1 };
    this.items.set(id, next);
    return { ...next };
  }

  async record(id: string, event: PortalEventInput): Promise<PortalEvent> {
    const trail = this.trails.get(id) ?? [];
    const prevHash = trail.at(-1)?.hash ?? '0'.repeat(64);
    const body = { itemId: id, seq: trail.length + 1, ...event };
    const stored: PortalEvent = { ...body, prevHash, hash: chainHash(prevHash, body) };
    trail.push(stored);
    this.trails.set(id, trail);
    return stored;
  }

  async events(id: string): Promise<PortalEvent[]> {
    return [...(this.trails.get(id) ?? [])];
  }

  async shred(id: string, state: 'expired' | 'purged' | 'released', event: PortalEventInput): Promise<PortalItem> {
    const item = await this.update(id, (i) => ({ ...i, state, kid: null, wrappedKey: null, sealed: null, updatedAt: this.now() }));
    this.bodies.delete(id);
    await this.record(id, event);
    return item;
  }

  async rewrapAll(): Promise<number> {
    this.rewrapCalls += 1;
    let n = 0;
    for (const item of this.items.values()) {
      if (item.wrappedKey === null) continue;
      item.kid = this.kid;
      n += 1;
    }
    return n;
  }

  async verifyTrail(id: string): Promise<{ ok: true; events: number } | { ok: false; seq: number; reason: string }> {
    let prev = '0'.repeat(64);
    const trail = this.trails.get(id) ?? [];
    for (const e of trail) {
      const { prevHash, hash, ...body } = e;
      if (prevHash !== prev) return { ok: false, seq: e.seq, reason: 'prevHash does not match the previous entry' };
      if (chainHash(prevHash, body) !== hash) return { ok: false, seq: e.seq, reason: 'hash does not match the entry' };
      prev = hash;
    }
    return { ok: true, events: trail.length };
  }

  /** Test helper: the item with this live token. */
  byToken(token: string): PortalItem | undefined {
    return [...this.items.values()].find((i) => i.tokenHash === tokenHash(token));
  }
}

export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

function chainHash(prevHash: string, body: object): string {
  return createHash('sha256')
    .update(prevHash + JSON.stringify(body))
    .digest('hex');
}

/** Records every notice; queue ids N1, N2, ... */
export class FakeNotices implements NoticePort {
  readonly sent: ServiceNotice[] = [];
  readonly ids: string[] = [];
  failNext = false;

  async send(notice: ServiceNotice): Promise<string> {
    if (this.failNext) {
      this.failNext = false;
      throw new Error('queue full');
    }
    const noticeId = `N${this.sent.length + 1}`;
    this.sent.push({ ...notice });
    this.ids.push(noticeId);
    return noticeId;
  }

  tokenOf(index: number): string {
    const notice = this.sent[index] as { link?: string } | undefined;
    const link = notice?.link;
    if (!link) throw new Error(`notice ${index} has no link`);
    return link.slice(link.lastIndexOf('/') + 1);
  }
}
