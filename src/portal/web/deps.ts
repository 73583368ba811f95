import type { Readable } from 'node:stream';
import type { Config } from '../../config/schema';
import type { Logger } from '../../log/logger';
import type { TlsProfile } from '../../policy/tls-profile';
import type { PortalEvent, PortalEventInput, PortalItem, PortalSealedFacts } from '../../store/types';

/**
 * The narrow slice of PortalCopies (src/portal/copies.ts) the web app calls. The real class satisfies it
 * structurally; tests use an in-memory fake.
 */
export interface PortalItemsPort {
  /** The item whose live link this token is (undefined for unknown tokens). */
  byToken(token: string): Promise<PortalItem | undefined>;
  get(id: string): Promise<PortalItem | undefined>;
  /** Unsealed facts; throws once the copy is shredded. */
  facts(item: PortalItem): PortalSealedFacts;
  /** The decrypted message (RFC 5322 bytes), streamed. */
  openMessage(item: PortalItem): Promise<Readable>;
  update(id: string, mutate: (item: PortalItem) => PortalItem): Promise<PortalItem>;
  record(id: string, event: PortalEventInput): Promise<PortalEvent>;
}

/** The notices the web app sends (a subset of the notices module's Notice union). */
export type PortalWebNotice = { kind: 'otp-code'; itemId: string; to: string; code: string; validForMs: number } | { kind: 'otp-locked'; itemId: string; to: string; until: number };

/** The slice of NoticeSender (src/portal/notices) the web app calls. */
export interface NoticePort {
  send(notice: PortalWebNotice): Promise<string>;
}

/**
 * The store's shared cache (KeyValueCache): pre-authentication state, codes, counters and sessions live here
 * (namespaces 'portal-*'), so any relay instance on one store can serve any recipient.
 */
export interface PortalCachePort {
  cacheGet(namespace: string, key: string): Promise<string | undefined>;
  cacheSet(namespace: string, key: string, value: string, ttlMs: number): Promise<void>;
  cacheDelete(namespace: string, key: string): Promise<void>;
  /** Atomic; creates the counter at 1 with the ttl when missing. */
  cacheIncrement(namespace: string, key: string, ttlMs: number): Promise<number>;
}

export interface PortalWebDeps {
  config: Config;
  logger: Logger;
  copies: PortalItemsPort;
  notices: NoticePort;
  /** The store (its KeyValueCache role). */
  cache: PortalCachePort;
  tls: { cert: string; key: string };
  /** From src/policy/tls-profile: inbound's settings (TLS 1.2+, NIST suites and groups). */
  profile: TlsProfile;
  now?: () => number;
  /** Requests per client address per minute on each POST route (default 20). */
  postRateLimit?: number;
}
