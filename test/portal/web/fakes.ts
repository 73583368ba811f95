import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { parseConfig } from '../../../src/config/load';
import type { Config } from '../../../src/config/schema';
import { silentLogger } from '../../../src/log/logger';
import { defaultTlsProfile } from '../../../src/policy/tls-profile';
import type { PortalEvent, PortalEventInput, PortalItem, PortalSealedFacts } from '../../../src/store/types';
import type { NoticePort, PortalCachePort, PortalItemsPort, PortalWebDeps, PortalWebNotice } from '../../../src/portal/web/deps';

/** A clock tests move by hand. */
export class Clock {
  constructor(public t = Date.UTC(2026, 10, 29, 12, 0, 0)) {}
  now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');

/** In-memory PortalCopies with the documented behaviour: tokens stored as hashes, final states, events. */
export class FakeCopies implements PortalItemsPort {
  readonly items = new Map<string, PortalItem>();
  readonly facts_ = new Map<string, PortalSealedFacts>();
  readonly bodies = new Map<string, Buffer>();
  readonly eventLog: PortalEvent[] = [];
  private n = 0;

  constructor(private readonly clock: Clock) {}

  add(input: { body: string | Buffer; recipient?: string; from?: string; auth?: PortalItem['auth']; state?: PortalItem['state']; expiresIn?: number }): { item: PortalItem; token: string } {
    const id = `item-${++this.n}`;
    const token = randomBytes(32).toString('base64url');
    const now = this.clock.now();
    const body = Buffer.isBuffer(input.body) ? input.body : Buffer.from(input.body);
    const item: PortalItem = {
      id,
      queueId: `q-${this.n}`,
      jobId: `j-${this.n}`,
      recipientHash: sha256(input.recipient ?? 'dana@partner.example'),
      kid: 'k1',
      wrappedKey: 'wrapped',
      sealed: 'sealed',
      tokenHash: sha256(token),
      state: input.state ?? 'notified',
      size: body.length,
      chunkSize: 65536,
      auth: input.auth ?? { methods: ['email-otp'] },
      createdAt: now,
      expiresAt: now + (input.expiresIn ?? 30 * 86_400_000),
      updatedAt: now,
      version: 1,
    };
    this.items.set(id, item);
    this.facts_.set(id, { recipient: input.recipient ?? 'dana@partner.example', from: input.from ?? 'doctor@clinic.example', subject: 'secret subject' });
    this.bodies.set(id, body);
    return { item, token };
  }

  async byToken(token: string): Promise<PortalItem | undefined> {
    const hash = sha256(token);
    for (const item of this.items.values()) if (item.tokenHash === hash) return { ...item };
    return undefined;
  }
  async get(id: string): Promise<PortalItem | undefined> {
    const item = this.items.get(id);
    return item ? { ...item } : undefined;
  }
  facts(item: PortalItem): PortalSealedFacts {
    const facts = this.facts_.get(item.id);
    if (!facts || !this.items.get(item.id)?.sealed) throw new Error('PortalKeyError: shredded');
    return facts;
  }
  async openMessage(item: PortalItem): Promise<Readable> {
    const body = this.bodies.get(item.id);
    if (!body) throw new Error('PortalKeyError: shredded');
    return Readable.from([body]);
  }
  async update(id: string, mutate: (item: PortalItem) => PortalItem): Promise<PortalItem> {
    const current = this.items.get(id);
    if (!current) throw new Error(`no item ${id}`);
    const next = { ...mutate({ ...current }), version: current.version + 1, updatedAt: this.clock.now() };
    this.items.set(id, next);
    return next;
  }
  async record(id: string, event: PortalEventInput): Promise<PortalEvent> {
    const prev = this.eventLog.filter((e) => e.itemId === id).at(-1);
    const entry: PortalEvent = { ...event, itemId: id, seq: (prev?.seq ?? 0) + 1, prevHash: prev?.hash ?? '', hash: '' };
    entry.hash = sha256(entry.prevHash + JSON.stringify(event));
    this.eventLog.push(entry);
    return entry;
  }
  /** Resend: a new token; the old one stops working at once. */
  newToken(id: string): string {
    const token = randomBytes(32).toString('base64url');
    const item = this.items.get(id)!;
    this.items.set(id, { ...item, tokenHash: sha256(token) });
    return token;
  }
  /** Final state plus crypto-shredding (key, facts and body gone). */
  shred(id: string, state: 'expired' | 'purged' | 'released'): void {
    const item = this.items.get(id)!;
    this.items.set(id, { ...item, state, kid: null, wrappedKey: null, sealed: null });
    this.bodies.delete(id);
  }
  events(id: string, type?: string): PortalEvent[] {
    return this.eventLog.filter((e) => e.itemId === id && (type === undefined || e.type === type));
  }
}

export class FakeNotices implements NoticePort {
  readonly sent: PortalWebNotice[] = [];
  async send(notice: PortalWebNotice): Promise<string> {
    this.sent.push(notice);
    return `notice-${this.sent.length}`;
  }
  lastCode(itemId?: string): string {
    const codes = this.sent.filter((n): n is Extract<PortalWebNotice, { kind: 'otp-code' }> => n.kind === 'otp-code' && (itemId === undefined || n.itemId === itemId));
    const last = codes.at(-1);
    if (!last) throw new Error('no code was sent');
    return last.code;
  }
}

/** KeyValueCache with TTLs on the test clock; cacheIncrement creates at 1 with the ttl. */
export class FakeCache implements PortalCachePort {
  readonly entries = new Map<string, { value: string; expiresAt: number }>();
  constructor(private readonly clock: Clock) {}
  private live(key: string) {
    const entry = this.entries.get(key);
    if (entry && entry.expiresAt <= this.clock.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }
  async cacheGet(namespace: string, key: string): Promise<string | undefined> {
    return this.live(`${namespace}/${key}`)?.value;
  }
  async cacheSet(namespace: string, key: string, value: string, ttlMs: number): Promise<void> {
    this.entries.set(`${namespace}/${key}`, { value, expiresAt: this.clock.now() + ttlMs });
  }
  async cacheDelete(namespace: string, key: string): Promise<void> {
    this.entries.delete(`${namespace}/${key}`);
  }
  async cacheIncrement(namespace: string, key: string, ttlMs: number): Promise<number> {
    const k = `${namespace}/${key}`;
    const entry = this.live(k);
    const next = entry ? Number(entry.value) + 1 : 1;
    this.entries.set(k, { value: String(next), expiresAt: entry?.expiresAt ?? this.clock.now() + ttlMs });
    return next;
  }
}

export function portalConfig(portal: Record<string, unknown> = {}): Config {
  return parseConfig({ listeners: [{ name: 'smtp', port: 0, tls: 'starttls', auth: 'required' }], portal: { organisation: 'Riverside Clinic', host: '127.0.0.1', port: 0, ...portal } }, {}, '/tmp');
}

export interface World {
  clock: Clock;
  copies: FakeCopies;
  notices: FakeNotices;
  cache: FakeCache;
  deps: PortalWebDeps;
}

export function makeWorld(opts: { portal?: Record<string, unknown>; tls?: { cert: string; key: string }; realClock?: boolean; postRateLimit?: number } = {}): World {
  const clock = new Clock(opts.realClock ? Date.now() : undefined);
  if (opts.realClock) clock.now = () => Date.now();
  const copies = new FakeCopies(clock);
  const notices = new FakeNotices();
  const cache = new FakeCache(clock);
  const deps: PortalWebDeps = {
    config: portalConfig(opts.portal),
    logger: silentLogger(),
    copies,
    notices,
    cache,
    tls: opts.tls ?? { cert: '', key: '' },
    profile: defaultTlsProfile(),
    now: clock.now,
    postRateLimit: opts.postRateLimit ?? 1000,
  };
  return { clock, copies, notices, cache, deps };
}

/** A small multipart message: text, HTML (optionally hostile), one attachment. */
export function sampleMessage(opts: { html?: string; attachment?: Buffer; attachmentName?: string; subject?: string } = {}): string {
  const attachment = (opts.attachment ?? Buffer.from('%PDF-1.4 lab results for the test\n')).toString('base64').replace(/(.{76})/g, '$1\r\n');
  const html = opts.html ?? '<p>Hello <b>Dana</b>, your <i>results</i> are attached.</p>';
  return [
    'From: Dr Who <doctor@clinic.example>',
    'To: dana@partner.example',
    `Subject: ${opts.subject ?? 'Your lab results'}`,
    'Date: Sun, 29 Nov 2026 10:00:00 +0000',
    'Message-ID: <m1@clinic.example>',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="outer"',
    '',
    '--outer',
    'Content-Type: multipart/alternative; boundary="alt"',
    '',
    '--alt',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'Hello Dana, your results are attached.',
    '--alt',
    'Content-Type: text/html; charset=utf-8',
    '',
    html,
    '--alt--',
    '--outer',
    `Content-Type: application/pdf; name="${opts.attachmentName ?? 'results.pdf'}"`,
    `Content-Disposition: attachment; filename="${opts.attachmentName ?? 'results.pdf'}"`,
    'Content-Transfer-Encoding: base64',
    '',
    attachment,
    '--outer--',
    '',
  ].join('\r\n');
}
