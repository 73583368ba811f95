import type { Readable } from 'node:stream';
import type { FallbackItem, PortalEvent, PortalEventInput, PortalFilter, PortalItem, PortalSealedFacts } from '../../store/types';
import type { Notice } from '../notices';

/*
 * The narrow interfaces the portal service uses from its neighbours in src/portal: the encrypted copies
 * (PortalCopies, src/portal/copies.ts), the notices (NoticeSender, src/portal/notices) and the key file
 * (src/portal/crypto). The real classes satisfy them structurally; tests pass in-memory fakes.
 */

/** The PortalCopies methods the service calls. */
export interface CopiesPort {
  create(input: {
    fallbackId: string;
    queueId: string;
    jobId: string;
    facts: PortalSealedFacts;
    body: Readable;
    expiresAt: number;
    auth: PortalItem['auth'];
    actor?: string;
  }): Promise<{ item: PortalItem; token: string }>;
  get(id: string): Promise<PortalItem | undefined>;
  list(filter?: PortalFilter): Promise<PortalItem[]>;
  facts(item: PortalItem): PortalSealedFacts;
  openMessage(item: PortalItem): Promise<Readable>;
  newToken(id: string): Promise<{ item: PortalItem; token: string }>;
  update(id: string, mutate: (item: PortalItem) => PortalItem): Promise<PortalItem>;
  record(id: string, event: PortalEventInput): Promise<PortalEvent>;
  events(id: string): Promise<PortalEvent[]>;
  shred(id: string, state: 'expired' | 'purged' | 'released', event: PortalEventInput): Promise<PortalItem>;
  rewrapAll(): Promise<number>;
  verifyTrail(id: string): Promise<{ ok: true; events: number } | { ok: false; seq: number; reason: string }>;
}

/** The notice kinds the service sends: the notices module's own shapes. */
export type ServiceNotice = Extract<Notice, { kind: 'portal-link' | 'expiry-reminder' | 'recipient-not-told' | 'unread-at-expiry' }>;

/** NoticeSender: queues a notice as a new message; returns its queue id. */
export interface NoticePort {
  send(notice: ServiceNotice): Promise<string>;
}

/** What the service needs of FallbackService (src/fallback). */
export interface FallbackPort {
  claim(owner: string, limit: number, leaseMs: number, now?: number): Promise<FallbackItem[]>;
  ack(id: string, owner: string): Promise<void>;
}

/** The key-file operations of src/portal/crypto used by key rotation. */
export interface KeyFilePort {
  addKeyEncryptionKey(file: string): Promise<string>;
  retireKeyEncryptionKeys(file: string, keep: ReadonlySet<string>): Promise<string[]>;
}

/** A final notice outcome, as outbound reports it (NoticeObserver.noticeFinished). */
export interface NoticeFinishedEvent {
  queueId: string;
  itemId?: string;
  kind: string;
  recipient: string;
  outcome: 'delivered' | 'bounced';
  reason: string;
  tls: string | null;
  /** The RFC 3463 enhanced status of a bounce (e.g. "5.1.1"), when outbound reports it. */
  status?: string;
  /** The remote server's reply to a bounced notice, when outbound reports it (never content). */
  diagnostic?: string;
}

/**
 * Whether a recipient domain may be delivered to over SMTP now (the relay wires it to outbound's domain
 * check: verdict 'deliver'). Used by auto-release (portal.autoRelease); a throw counts as not compliant.
 */
export interface DomainCompliance {
  isCompliant(domain: string): Promise<boolean>;
}
