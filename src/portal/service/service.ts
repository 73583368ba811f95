import type { Config } from '../../config/schema';
import type { Logger } from '../../log/logger';
import {
  InvalidStateError,
  NotFoundError,
  type FallbackItem,
  type HeaderFacts,
  type JobQueue,
  type MessageRecord,
  type NewMessage,
  type PortalAuthMethod,
  type PortalEvent,
  type PortalFilter,
  type PortalItem,
  type PortalSealedFacts,
  type PortalState,
  type QueueAdmin,
  type Retention,
} from '../../store/types';
import { readHeaderBlock } from './headers';
import type { CopiesPort, DomainCompliance, FallbackPort, KeyFilePort, NoticeFinishedEvent, NoticePort } from './ports';

const DAY = 86_400_000;
/** The longest a copy may live, counted from its creation. */
export const MAX_LIFETIME = 365 * DAY;
export const MIN_LIFETIME = DAY;

/** States in which a copy can still be picked up. */
export const LIVE_STATES: readonly PortalState[] = ['stored', 'notified', 'notify-failed', 'opened', 'read'];
/** States after which the copy is gone (crypto-shredded). */
export const FINAL_STATES: readonly PortalState[] = ['expired', 'released', 'purged'];
export const PORTAL_STATES: readonly PortalState[] = [...LIVE_STATES, 'revoked', ...FINAL_STATES];
/** Recipients in these states have not opened their message. */
const UNREAD_STATES: readonly PortalState[] = ['stored', 'notified', 'notify-failed'];
/** Auto-release candidates: live and not read yet (a recipient who read the message is done with it). */
const AUTO_RELEASE_STATES: readonly PortalState[] = ['stored', 'notified', 'notify-failed', 'opened'];

export function isPortalState(value: string): value is PortalState {
  return (PORTAL_STATES as readonly string[]).includes(value);
}

/** The store roles the service uses directly (the copies go through CopiesPort). */
/** Least time between the queue sweeps that hand-overs trigger (the relay also sweeps every minute). */
const HAND_OVER_SWEEP_GAP_MS = 5_000;

export type PortalServiceStore = Pick<QueueAdmin, 'getMessage'> & Pick<JobQueue, 'openBody' | 'enqueue'> & Pick<Retention, 'sweep'>;

export interface PortalServiceDeps {
  config: Config;
  logger: Logger;
  store: PortalServiceStore;
  copies: CopiesPort;
  notices: NoticePort;
  fallback: FallbackPort;
  /** This relay's name: hand-over claims are owned by `portal:<instance>`. */
  instance: string;
  now?: () => number;
  /** Key rotation: the key-file operations and a way to rebuild the copies over the rotated key file. */
  keys?: KeyFilePort & { reopen(keyFile: string): Promise<CopiesPort> };
  /** The domain check behind portal.autoRelease; absent: no auto-release even when configured. */
  compliance?: DomainCompliance;
}

/** What notify, expiry and methods are for one recipient and sender after overrides (and the message's own choices). */
export interface PortalSettings {
  notify: boolean;
  expiry: number;
  methods: PortalAuthMethod[];
  /** The slow hash of the sender's passphrase, present only when 'secret' is among the methods. */
  secretHash?: string;
}

/** The submitter's per-message choices (X-Sealgate-Portal-* headers, kept by inbound as params.portal). */
export type PortalChoices = NonNullable<NewMessage['params']['portal']>;

/**
 * Defaults from config.portal, then the override for the recipient's domain, then the one for the sender
 * address: the admin's settings. With `choices` (the message's params.portal, `{}` when it has none) the
 * result is the item's: the message may only choose within what the admin allows. notify can be turned
 * off but not on, expiry only shortened, methods only narrowed (an empty intersection keeps the admin's),
 * and 'secret' stays only with a passphrase hash; without one the recipient falls back to the admin's
 * other methods, or email-otp, so they can still pick the message up.
 */
export function settingsFor(portal: Config['portal'], recipient: string, sender: string, choices?: PortalChoices): PortalSettings {
  const settings: PortalSettings = { notify: portal.notify, expiry: portal.expiry, methods: [...portal.methods] };
  const domain = recipient.slice(recipient.lastIndexOf('@') + 1).toLowerCase();
  for (const key of [domain, sender.toLowerCase()]) {
    const override = key ? portal.overrides[key] : undefined;
    if (!override) continue;
    if (override.notify !== undefined) settings.notify = override.notify;
    if (override.expiry !== undefined) settings.expiry = override.expiry;
    if (override.methods !== undefined) settings.methods = [...override.methods];
  }
  return choices ? withChoices(settings, choices) : settings;
}

function withChoices(admin: PortalSettings, choices: PortalChoices): PortalSettings {
  const notify = admin.notify && choices.notify !== false;
  const expiry = choices.expiry !== undefined && choices.expiry > 0 ? Math.min(admin.expiry, choices.expiry) : admin.expiry;
  const chosen = choices.methods ? admin.methods.filter((m) => choices.methods!.includes(m)) : [];
  let methods = chosen.length > 0 ? chosen : [...admin.methods];
  const secretHash = methods.includes('secret') ? choices.secretHash : undefined;
  if (!secretHash && methods.includes('secret')) {
    // No passphrase to check against: 'secret' cannot work, so offer the rest.
    methods = methods.filter((m) => m !== 'secret');
    if (methods.length === 0) methods = admin.methods.filter((m) => m !== 'secret');
    if (methods.length === 0) methods = ['email-otp'];
  }
  return { notify, expiry, methods, ...(secretHash ? { secretHash } : {}) };
}

/** The base URL of links: portal.publicUrl, else https://<host>:<port>. */
export function portalBaseUrl(portal: Config['portal']): string {
  if (portal.publicUrl) return portal.publicUrl.replace(/\/+$/, '');
  const host = portal.host.includes(':') ? `[${portal.host}]` : portal.host;
  return `https://${host}:${portal.port}`;
}

/** The recipient's link: GET /m/<token> (the web app moves the token into a cookie). */
export function portalLink(portal: Config['portal'], token: string): string {
  return `${portalBaseUrl(portal)}/m/${token}`;
}

/** An item as admins see it: ids, states and times; never the sealed facts, keys or token hash. */
export interface PortalItemView {
  id: string;
  queueId: string;
  jobId: string;
  state: PortalState;
  revokedFrom?: PortalState;
  shredded: boolean;
  linkLive: boolean;
  kid: string | null;
  size: number;
  methods: PortalAuthMethod[];
  createdAt: string;
  expiresAt: string;
  updatedAt: string;
  notifiedAt?: string;
  openedAt?: string;
  readAt?: string;
  remindedAt?: string;
  noticeQueueId?: string;
}

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

export function toPortalItemView(item: PortalItem): PortalItemView {
  const view: PortalItemView = {
    id: item.id,
    queueId: item.queueId,
    jobId: item.jobId,
    state: item.state,
    shredded: item.wrappedKey === null,
    linkLive: item.tokenHash !== null && item.wrappedKey !== null,
    kid: item.kid,
    size: item.size,
    methods: [...item.auth.methods],
    createdAt: iso(item.createdAt)!,
    expiresAt: iso(item.expiresAt)!,
    updatedAt: iso(item.updatedAt)!,
  };
  if (item.revokedFrom) view.revokedFrom = item.revokedFrom;
  for (const key of ['notifiedAt', 'openedAt', 'readAt', 'remindedAt'] as const) {
    const at = iso(item[key]);
    if (at) view[key] = at;
  }
  if (item.noticeQueueId) view.noticeQueueId = item.noticeQueueId;
  return view;
}

/** An audit-trail entry as admins see it (no content is ever in one). */
export interface PortalEventView {
  seq: number;
  at: string;
  type: string;
  actor: string;
  ip?: string | null;
  uaHash?: string | null;
  detail?: PortalEvent['detail'];
  hash: string;
}

export function toPortalEventView(event: PortalEvent): PortalEventView {
  const view: PortalEventView = { seq: event.seq, at: new Date(event.at).toISOString(), type: event.type, actor: event.actor, hash: event.hash };
  if (event.ip !== undefined) view.ip = event.ip;
  if (event.uaHash !== undefined) view.uaHash = event.uaHash;
  if (event.detail !== undefined) view.detail = event.detail;
  return view;
}

export type ExtendBy = { until: number } | { by: number };

/**
 * The portal's life cycle around the encrypted copies:
 *
 *   fallback item (ready) ──hand-over: copy, notice, ack──▶ stored ──notice delivered──▶ notified ──▶ opened ──▶ read
 *                                                              └──notice bounced──▶ notify-failed (the sender is told)
 *   any live state ──revoke──▶ revoked ──restore──▶ the state it had
 *   live or revoked ──expiry──▶ expired · ──purge──▶ purged · ──release──▶ released (all three crypto-shred)
 *
 * Admin operations record admin.<op> with the actor in the item's hash-chained trail. Nothing here logs content.
 */
export class PortalService {
  private copiesPort: CopiesPort;
  private readonly now: () => number;
  private readonly owner: string;
  /** Auto-release: when each recipient domain was last checked (this process only). */
  private readonly checkedAt = new Map<string, number>();

  constructor(private readonly deps: PortalServiceDeps) {
    this.copiesPort = deps.copies;
    this.now = deps.now ?? Date.now;
    this.owner = `portal:${deps.instance}`;
  }

  /** The copies in use (replaced after a key rotation). */
  get copies(): CopiesPort {
    return this.copiesPort;
  }

  private get portal(): Config['portal'] {
    return this.deps.config.portal;
  }

  // ---- hand-over ---------------------------------------------------------------------------------------

  /**
   * Claims up to `limit` ready fallback items and hands each over: encrypted copy first, then the notice,
   * then the ack. A crash before the ack leaves the claim to expire; the replay creates the copy again with
   * the same id (replacing copy and token, so the first link dies) and sends a new notice: the notice is
   * at least once, but only the newest link works. Returns how many items were handed over.
   */
  private sweptAt = 0;

  async handOverOnce(limit = 20): Promise<number> {
    const items = await this.deps.fallback.claim(this.owner, limit, this.deps.config.fallback.claimLease, this.now());
    let done = 0;
    for (const item of items) {
      try {
        if (await this.handOver(item)) done += 1;
      } catch (err) {
        // The claim expires and another pass (here or on another relay) tries again.
        this.deps.logger.warn({ event: 'portal-handover-failed', id: item.id, queueId: item.queueId, err: (err as Error).message }, 'portal hand-over failed; will retry');
      }
    }
    if (done > 0 && this.now() - this.sweptAt >= HAND_OVER_SWEEP_GAP_MS) {
      // A handed-over message's plaintext body may go now (the sweep keeps it while any job or item still needs
      // it): sweep soon instead of waiting for the relay's minute, so only ciphertext remains. The sweep walks the
      // whole queue, so a burst of hand-overs sweeps at most every few seconds.
      this.sweptAt = this.now();
      await this.deps.store.sweep(this.now()).catch((err: Error) => this.deps.logger.warn({ event: 'sweep-failed', err: err.message }, 'queue sweep after hand-over failed'));
    }
    return done;
  }

  private async handOver(item: FallbackItem): Promise<boolean> {
    const message = await this.deps.store.getMessage(item.queueId);
    if (!message) {
      this.deps.logger.warn({ event: 'portal-handover-skipped', id: item.id, queueId: item.queueId }, 'the message of a fallback item is gone; nothing to hand over');
      return false;
    }
    const headers = await readHeaderBlock(await this.deps.store.openBody(item.queueId));
    const facts: PortalSealedFacts = { recipient: item.recipient, from: item.from };
    const messageId = item.messageId ?? message.headers.messageId;
    if (messageId) facts.messageId = messageId;
    if (headers.subject !== undefined) facts.subject = headers.subject;
    const date = message.headers.date ?? headers.date;
    if (date) facts.date = date;

    const settings = settingsFor(this.portal, item.recipient, item.from, message.params.portal ?? {});
    const created = await this.copiesPort.create({
      fallbackId: item.id,
      queueId: item.queueId,
      jobId: item.jobId,
      facts,
      body: await this.deps.store.openBody(item.queueId),
      expiresAt: this.now() + settings.expiry,
      auth: { methods: settings.methods, ...(settings.secretHash ? { secretHash: settings.secretHash } : {}) },
      actor: 'relay',
    });
    if (settings.notify) {
      const notice = {
        kind: 'portal-link' as const,
        itemId: created.item.id,
        to: item.recipient,
        link: portalLink(this.portal, created.token),
        expiresAt: created.item.expiresAt,
        ...(this.portal.includeOriginalSubject && facts.subject !== undefined ? { originalSubject: facts.subject } : {}),
      };
      const noticeQueueId = await this.deps.notices.send(notice);
      await this.copiesPort.update(created.item.id, (current) => ({ ...current, noticeQueueId }));
    }
    await this.deps.fallback.ack(item.id, this.owner);
    this.deps.logger.info({ event: 'portal-handover', id: item.id, queueId: item.queueId, notify: settings.notify }, 'diverted recipient handed over to the portal');
    return true;
  }

  // ---- notice outcomes ---------------------------------------------------------------------------------

  /**
   * A notice reached its final outcome (outbound's NoticeObserver, wired by the relay). Only the item's current
   * portal-link notice changes its state; when that one bounces, the sender gets a 'recipient-not-told' DSN.
   * Any other kind (a reminder, a code, or that DSN itself bouncing) is only recorded, so a DSN never begets another.
   */
  async noticeFinished(e: NoticeFinishedEvent): Promise<void> {
    if (!e.itemId) return;
    const item = await this.copiesPort.get(e.itemId);
    if (!item) return;
    const at = this.now();
    const detail: Record<string, string | boolean> = { kind: e.kind, queueId: e.queueId, reason: e.reason };
    // The flag is audited whenever the original subject may have travelled in a link notice.
    if (e.kind === 'portal-link' && this.portal.includeOriginalSubject) detail.originalSubject = true;
    if (e.outcome === 'delivered') {
      await this.copiesPort.record(item.id, { at, type: 'notify.sent', actor: 'relay', detail: { ...detail, tls: e.tls ?? 'plaintext' } });
      if (e.kind === 'portal-link' && e.queueId === item.noticeQueueId) {
        await this.copiesPort.update(item.id, (current) => (['stored', 'notify-failed'].includes(current.state) ? { ...current, state: 'notified', notifiedAt: at } : { ...current, notifiedAt: at }));
      }
      return;
    }
    await this.copiesPort.record(item.id, { at, type: 'notify.failed', actor: 'relay', detail });
    if (e.kind !== 'portal-link' || e.queueId !== item.noticeQueueId) return;
    const updated = await this.copiesPort.update(item.id, (current) => (['stored', 'notified'].includes(current.state) ? { ...current, state: 'notify-failed' } : current));
    let facts: PortalSealedFacts;
    try {
      facts = this.copiesPort.facts(updated);
    } catch {
      return; // shredded meanwhile: nobody left to tell about
    }
    if (!facts.from) return;
    const original = await this.deps.store.getMessage(item.queueId).catch(() => undefined);
    await this.deps.notices.send({
      kind: 'recipient-not-told',
      itemId: item.id,
      to: facts.from,
      recipient: facts.recipient,
      queueId: item.queueId,
      reason: e.reason,
      ...(facts.messageId ? { messageId: facts.messageId } : {}),
      ...(original ? { arrivalAt: original.receivedAt } : {}),
      ...(original?.params.dsn?.envid ? { envid: original.params.dsn.envid } : {}),
      ...(e.status ? { status: e.status } : {}),
      ...(e.diagnostic ? { diagnostic: e.diagnostic } : {}),
    });
  }

  // ---- reminders and expiry ----------------------------------------------------------------------------

  /**
   * Unread items within remindBefore of expiry get one reminder (with a new link: the old token is stored
   * only as a hash, so the reminder issues a new one and the first link stops working); items past their
   * expiry are crypto-shredded, and each original message's sender is told once which recipients never read it.
   */
  async sweepOnce(): Promise<void> {
    const now = this.now();
    const remindBefore = this.portal.remindBefore;
    if (remindBefore !== null) {
      const soon = await this.copiesPort.list({ expiresBefore: now + remindBefore });
      for (const item of soon) {
        if (item.expiresAt <= now || item.remindedAt !== undefined || !['stored', 'notified'].includes(item.state)) continue;
        try {
          await this.remind(item, now);
        } catch (err) {
          this.deps.logger.warn({ event: 'portal-reminder-failed', id: item.id, err: (err as Error).message }, 'expiry reminder failed; will retry');
        }
      }
    }

    const due = await this.copiesPort.list({ expiresBefore: now });
    const unread = new Map<string, { to: string; recipients: string[]; messageId?: string }>();
    for (const item of due) {
      if (FINAL_STATES.includes(item.state) || item.expiresAt > now) continue;
      try {
        let facts: PortalSealedFacts | undefined;
        try {
          facts = this.copiesPort.facts(item);
        } catch {
          facts = undefined;
        }
        await this.copiesPort.shred(item.id, 'expired', { at: now, type: 'message.expired', actor: 'relay' });
        if (facts && facts.from && UNREAD_STATES.includes(item.state)) {
          const group = unread.get(item.queueId) ?? { to: facts.from, recipients: [], ...(facts.messageId ? { messageId: facts.messageId } : {}) };
          group.recipients.push(facts.recipient);
          unread.set(item.queueId, group);
        }
        this.deps.logger.info({ event: 'portal-expired', id: item.id, queueId: item.queueId }, 'portal copy expired and shredded');
      } catch (err) {
        this.deps.logger.warn({ event: 'portal-expiry-failed', id: item.id, err: (err as Error).message }, 'expiring a portal copy failed; will retry');
      }
    }
    // At most once: a crash between the shred and this notice loses the notice rather than sending it twice.
    for (const [queueId, group] of unread) {
      try {
        await this.deps.notices.send({ kind: 'unread-at-expiry', to: group.to, recipients: group.recipients.sort(), queueId, ...(group.messageId ? { messageId: group.messageId } : {}) });
      } catch (err) {
        this.deps.logger.warn({ event: 'portal-unread-notice-failed', queueId, err: (err as Error).message }, 'the unread-at-expiry notice could not be queued');
      }
    }

    await this.autoReleaseOnce(now);
  }

  /**
   * portal.autoRelease: each recipient domain with live unread copies is checked at most once per
   * autoReleaseCheckEvery; when it is compliant again, its copies are released as `release` does (actor relay,
   * detail auto). A failed check counts as not compliant. Read copies stay: that recipient is done.
   */
  private async autoReleaseOnce(now: number): Promise<void> {
    const compliance = this.deps.compliance;
    if (!this.portal.autoRelease || !compliance) return;
    const byDomain = new Map<string, PortalItem[]>();
    for (const item of await this.copiesPort.list()) {
      if (!AUTO_RELEASE_STATES.includes(item.state) || item.expiresAt <= now) continue;
      let recipient: string;
      try {
        recipient = this.copiesPort.facts(item).recipient;
      } catch {
        continue; // shredded meanwhile
      }
      const domain = recipient.slice(recipient.lastIndexOf('@') + 1).toLowerCase();
      byDomain.set(domain, [...(byDomain.get(domain) ?? []), item]);
    }
    for (const [domain, items] of byDomain) {
      const last = this.checkedAt.get(domain);
      if (last !== undefined && now - last < this.portal.autoReleaseCheckEvery) continue;
      this.checkedAt.set(domain, now);
      let compliant = false;
      try {
        compliant = await compliance.isCompliant(domain);
      } catch (err) {
        this.deps.logger.warn({ event: 'portal-auto-release-check-failed', domain, err: (err as Error).message }, 'domain check for auto-release failed; counted as not compliant');
      }
      if (!compliant) continue;
      for (const item of items) {
        try {
          await this.releaseItem(item.id, 'relay', true);
        } catch (err) {
          this.deps.logger.warn({ event: 'portal-auto-release-failed', id: item.id, queueId: item.queueId, err: (err as Error).message }, 'auto-release of a portal copy failed; will retry');
          this.checkedAt.delete(domain);
        }
      }
    }
  }

  private async remind(item: PortalItem, now: number): Promise<void> {
    const facts = this.copiesPort.facts(item);
    if (!settingsFor(this.portal, facts.recipient, facts.from).notify) return;
    // Never told (notices off for this message, e.g. X-Sealgate-Portal-Notify: no): no reminder either.
    if (item.noticeQueueId === undefined) return;
    const { item: fresh, token } = await this.copiesPort.newToken(item.id);
    const noticeQueueId = await this.deps.notices.send({ kind: 'expiry-reminder', itemId: item.id, to: facts.recipient, link: portalLink(this.portal, token), expiresAt: fresh.expiresAt });
    await this.copiesPort.update(item.id, (current) => ({ ...current, remindedAt: now, noticeQueueId }));
    await this.copiesPort.record(item.id, { at: now, type: 'expiry.warned', actor: 'relay', detail: { queueId: noticeQueueId, expiresAt: fresh.expiresAt } });
  }

  // ---- admin operations --------------------------------------------------------------------------------

  private async require(id: string): Promise<PortalItem> {
    const item = await this.copiesPort.get(id);
    if (!item) throw new NotFoundError(`no portal item ${id}`);
    return item;
  }

  private refuse(item: PortalItem, op: string): never {
    throw new InvalidStateError(`portal item ${item.id} is ${item.state}; cannot ${op} it`);
  }

  /** Links and sessions stop working; restore brings the item back to the state it had. */
  async revoke(id: string, actor: string): Promise<PortalItem> {
    const item = await this.require(id);
    if (!LIVE_STATES.includes(item.state)) this.refuse(item, 'revoke');
    const updated = await this.copiesPort.update(id, (current) => {
      if (!LIVE_STATES.includes(current.state)) this.refuse(current, 'revoke');
      return { ...current, state: 'revoked', revokedFrom: current.state, updatedAt: this.now() };
    });
    await this.copiesPort.record(id, { at: this.now(), type: 'admin.revoke', actor, detail: { from: item.state } });
    return updated;
  }

  async restore(id: string, actor: string): Promise<PortalItem> {
    const item = await this.require(id);
    if (item.state !== 'revoked') this.refuse(item, 'restore');
    const updated = await this.copiesPort.update(id, (current) => {
      if (current.state !== 'revoked') this.refuse(current, 'restore');
      const { revokedFrom, ...rest } = current;
      return { ...rest, state: revokedFrom ?? 'stored', updatedAt: this.now() };
    });
    await this.copiesPort.record(id, { at: this.now(), type: 'admin.restore', actor, detail: { to: updated.state } });
    return updated;
  }

  /** Crypto-shreds the copy for good (state purged). */
  async purge(id: string, actor: string): Promise<PortalItem> {
    const item = await this.require(id);
    if (FINAL_STATES.includes(item.state)) this.refuse(item, 'purge');
    return this.copiesPort.shred(id, 'purged', { at: this.now(), type: 'admin.purge', actor, detail: { from: item.state } });
  }

  /** A new link in a new notice; the old link stops working at once. */
  async resend(id: string, actor: string): Promise<{ item: PortalItem; noticeQueueId: string }> {
    const item = await this.require(id);
    if (!LIVE_STATES.includes(item.state)) this.refuse(item, 'resend');
    // A process that does not run the listener (the CLI) cannot know a port-0 listener's port: a link built
    // now would be dead, and the new token would kill the working one.
    if (!this.portal.publicUrl && this.portal.port === 0)
      throw new Error('cannot build a portal link: portal.port is 0 and portal.publicUrl is unset (set portal.publicUrl, or resend through the admin API)');
    const facts = this.copiesPort.facts(item);
    const { item: fresh, token } = await this.copiesPort.newToken(id);
    const noticeQueueId = await this.deps.notices.send({ kind: 'portal-link', itemId: id, to: facts.recipient, link: portalLink(this.portal, token), expiresAt: fresh.expiresAt });
    const updated = await this.copiesPort.update(id, (current) => ({ ...current, noticeQueueId }));
    await this.copiesPort.record(id, { at: this.now(), type: 'admin.resend', actor, detail: { queueId: noticeQueueId } });
    return { item: updated, noticeQueueId };
  }

  /** Moves the expiry to `until` or by `by` ms; it must stay in the future and within 1 to 365 days of creation. */
  async extend(id: string, change: ExtendBy, actor: string): Promise<PortalItem> {
    const item = await this.require(id);
    if (FINAL_STATES.includes(item.state)) this.refuse(item, 'extend');
    const until = 'until' in change ? change.until : item.expiresAt + change.by;
    if (!Number.isFinite(until) || until <= this.now()) throw new InvalidStateError(`the new expiry ${iso(until) ?? String(until)} is not in the future`);
    if (until < item.createdAt + MIN_LIFETIME || until > item.createdAt + MAX_LIFETIME) {
      throw new InvalidStateError(`the new expiry must be between 1 and 365 days after the item was created (${iso(item.createdAt + MIN_LIFETIME)} to ${iso(item.createdAt + MAX_LIFETIME)})`);
    }
    const updated = await this.copiesPort.update(id, (current) => {
      const { remindedAt: _reminded, ...rest } = current;
      return { ...rest, expiresAt: until, updatedAt: this.now() };
    });
    await this.copiesPort.record(id, { at: this.now(), type: 'admin.extend', actor, detail: { from: item.expiresAt, to: until } });
    return updated;
  }

  /**
   * The recipient's domain is compliant again: the decrypted copy goes back into the queue as a new message
   * to this one recipient (normal delivery, compliant TLS), then the copy is shredded (state released).
   */
  async release(id: string, actor: string): Promise<{ item: PortalItem; queueId: string }> {
    return this.releaseItem(id, actor, false);
  }

  private async releaseItem(id: string, actor: string, auto: boolean): Promise<{ item: PortalItem; queueId: string }> {
    const item = await this.require(id);
    if (FINAL_STATES.includes(item.state) || (auto && !AUTO_RELEASE_STATES.includes(item.state))) this.refuse(item, 'release');
    const facts = this.copiesPort.facts(item);
    const original = await this.deps.store.getMessage(item.queueId);
    const message: NewMessage = {
      from: facts.from,
      recipients: [{ address: facts.recipient }],
      params: releasedParams(original),
      client: { ip: '127.0.0.1', listener: 'portal-release', user: actor },
      receivedAt: this.now(),
    };
    const headers: HeaderFacts = {};
    if (facts.messageId) headers.messageId = facts.messageId;
    if (facts.date) headers.date = facts.date;
    if (original?.headers.from) headers.from = original.headers.from;
    const record = await this.deps.store.enqueue(message, await this.copiesPort.openMessage(item), headers);
    if (!auto) await this.copiesPort.record(id, { at: this.now(), type: 'admin.release', actor, detail: { queueId: record.id } });
    const detail: Record<string, string | boolean> = auto ? { queueId: record.id, auto: true } : { queueId: record.id };
    const released = await this.copiesPort.shred(id, 'released', { at: this.now(), type: 'message.released', actor, detail });
    this.deps.logger.info({ event: 'portal-released', id, queueId: item.queueId, newQueueId: record.id, auto }, 'portal copy released to SMTP delivery');
    return { item: released, queueId: record.id };
  }

  /** Metadata and the audit trail; never content. */
  async show(id: string): Promise<{ item: PortalItemView; events: PortalEventView[] }> {
    const item = await this.require(id);
    const events = await this.copiesPort.events(id);
    return { item: toPortalItemView(item), events: events.map(toPortalEventView) };
  }

  async list(filter: PortalFilter = {}): Promise<PortalItemView[]> {
    return (await this.copiesPort.list(filter)).map(toPortalItemView);
  }

  /** Checks every item's hash chain (or one item's); lists the broken ones with their first bad entry. */
  async verify(ids?: string[]): Promise<{ checked: number; events: number; broken: Array<{ id: string; seq: number; reason: string }> }> {
    const list = ids ?? (await this.copiesPort.list()).map((i) => i.id);
    let events = 0;
    const broken: Array<{ id: string; seq: number; reason: string }> = [];
    for (const id of list) {
      if (ids) await this.require(id);
      const result = await this.copiesPort.verifyTrail(id);
      if (result.ok) events += result.events;
      else broken.push({ id, seq: result.seq, reason: result.reason });
    }
    return { checked: list.length, events, broken };
  }

  /**
   * Adds a new key-encryption key, rewraps every live data key under it and drops the keys no item uses any
   * more. A relay still running with the old key file keeps the old key in memory: restart relays afterwards.
   */
  /**
   * Adds a new current key-encryption key and rewraps every data key under it. Old keys stay in the file
   * (running relays pick up the new current key when they next wrap or read), unless `retire` is set: then keys
   * no item uses any more are dropped. Retire in a second run, once every relay has read the rotated file.
   */
  async rotateKey(keyFile: string, options: { retire?: boolean } = {}): Promise<{ kid: string; rewrapped: number; retired: string[] }> {
    const keys = this.deps.keys;
    if (!keys) throw new Error('key rotation is not wired in this process');
    const kid = await keys.addKeyEncryptionKey(keyFile);
    const copies = await keys.reopen(keyFile);
    const rewrapped = await copies.rewrapAll();
    const keep = new Set<string>([kid]);
    for (const item of await copies.list()) if (item.kid) keep.add(item.kid);
    const retired = options.retire ? await keys.retireKeyEncryptionKeys(keyFile, keep) : [];
    this.copiesPort = copies;
    this.deps.logger.info({ event: 'key.rotated', kid, rewrapped, retired }, 'portal key-encryption key rotated');
    return { kid, rewrapped, retired };
  }
}

function releasedParams(original: MessageRecord | undefined): NewMessage['params'] {
  const params: NewMessage['params'] = {};
  if (original?.params.bodyType) params.bodyType = original.params.bodyType;
  if (original?.params.smtpUtf8) params.smtpUtf8 = original.params.smtpUtf8;
  return params;
}
