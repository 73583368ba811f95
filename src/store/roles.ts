import type { Readable } from 'node:stream';
import type {
  ClaimedJob,
  EnqueueOptions,
  FallbackFilter,
  FallbackItem,
  HeaderFacts,
  JobRecord,
  JobResult,
  JobScope,
  MessageFilter,
  MessageRecord,
  NewMessage,
  PortalEvent,
  PortalEventInput,
  PortalFilter,
  PortalItem,
  QuarantineEntry,
  QuarantineKind,
  StoreCounts,
  WaitingJobs,
  EvidenceAnchor,
  EvidenceBase,
  EvidencePruneResult,
  EvidenceQuery,
  EvidenceRecord,
  EvidenceRecordInput,
} from './model';

/*
 * The store's roles. Each consumer asks for the role it uses: inbound and outbound the job queue, admin and
 * CLI the queue admin, the fallback module the fallback store, MTA-STS the cache, the relay the retention
 * sweep. Store (types.ts) is all of them; both backends implement every role over shared internals.
 * Errors are StoreError (errors.ts) with a code: 'not-found', 'lease-lost', 'handed-over', ...
 */

export interface StoreLifecycle {
  readonly kind: 'file' | 'redis' | 'lmdb';
  /** Opens connections, creates folders, recovers or quarantines damaged entries. */
  open(): Promise<void>;
  close(): Promise<void>;
  /** Cheap liveness check for /readyz. */
  ping(): Promise<void>;
}

/** What inbound and delivery workers use: messages in, due jobs out with a lease, results back. */
export interface JobQueue {
  /**
   * Streams a message body into the store. Resolves only once message, body and jobs are durable;
   * rejects (storing nothing) if the body stream errors. The body is stored byte for byte. With `options.id`
   * it is idempotent: a message already stored under that id is returned as it is and this body is dropped.
   */
  enqueue(message: NewMessage, body: Readable, headers?: HeaderFacts, options?: EnqueueOptions): Promise<MessageRecord>;
  /** The stored body; NotFoundError ('not-found') when the message or its body is gone. */
  openBody(id: string): Promise<Readable>;

  /** Leases up to `limit` due jobs (queued/deferred with dueAt <= now, or leased with an expired lease). */
  claimDue(owner: string, limit: number, leaseMs: number, now?: number): Promise<ClaimedJob[]>;
  /** Extends a lease the caller still holds; throws LeaseLostError ('lease-lost') otherwise. */
  renewLease(jobId: string, owner: string, leaseMs: number): Promise<void>;
  /** Hands a lease back without an attempt (shutdown): the job is due again at once. */
  releaseLease(jobId: string, owner: string): Promise<void>;
  /**
   * Records one attempt's per-recipient results, creates fallback items for diverted recipients and
   * settles the job: final when no recipient is left pending, else deferred until `retryAt` (now when absent).
   * Recipients the result does not mention stay pending; results for recipients no longer pending are ignored;
   * an address that is not in the job throws. Throws LeaseLostError when the lease was taken by another (a
   * lease that expired but was not taken is still honoured); after the message was deleted it throws
   * LeaseLostError or NotFoundError: either way the result is no longer wanted.
   */
  completeJob(jobId: string, owner: string, result: JobResult): Promise<JobRecord>;
}

/** What admins see and change: messages by id or filter, holds, retries, deletion, counts. */
export interface QueueAdmin {
  getMessage(id: string): Promise<MessageRecord | undefined>;
  listMessages(filter?: MessageFilter): Promise<MessageRecord[]>;
  /**
   * Admin actions on every non-final job of a message. hold: queued/deferred -> held (an attempt already
   * under way completes and its results are kept, its pending recipients stay held). release: held -> the
   * state it had, keeping its dueAt. retryNow: dueAt = now (held jobs stay held, due at once when released).
   * deleteMessage: the message, its body, jobs and fallback items (never portal copies: they have their own life
   * cycle in PortalStore); when some recipients already reached a final state the record stays as evidence only
   * (deletedAt set, body, fallback items and pending recipients gone) until retention. An unknown id throws
   * NotFoundError. `scope` limits hold, release and retryNow to the jobs of one domain.
   */
  hold(messageId: string, scope?: JobScope): Promise<MessageRecord>;
  release(messageId: string, scope?: JobScope): Promise<MessageRecord>;
  retryNow(messageId: string, scope?: JobScope): Promise<MessageRecord>;
  deleteMessage(messageId: string): Promise<void>;
  counts(): Promise<StoreCounts>;
  /** Jobs waiting for delivery by domain and the oldest one's arrival, from the schedule of waiting jobs only. */
  waitingJobs(): Promise<WaitingJobs>;
}

/** Recipients diverted to the secure-portal fallback: items, portal claims, hand-over, release. */
export interface FallbackStore {
  listFallback(filter?: FallbackFilter): Promise<FallbackItem[]>;
  getFallback(id: string): Promise<FallbackItem | undefined>;
  claimFallback(owner: string, limit: number, leaseMs: number, now?: number): Promise<FallbackItem[]>;
  /** Marks an item handed over; LeaseLostError when `owner` does not hold its claim, NotFoundError when gone. */
  ackFallback(id: string, owner: string): Promise<void>;
  /**
   * Puts the recipient back into delivery (its job becomes queued and due now, or stays held) and drops the
   * item. Refused with InvalidStateError code 'handed-over' once the item was acked: the portal already
   * handed the message over.
   */
  releaseFallback(id: string): Promise<void>;
  deleteFallback(id: string): Promise<void>;
}

/**
 * The built-in portal's encrypted copies and their audit trails. The store holds only what PortalItem holds
 * (ciphertext, wrapped keys, ids, states, times, hashes); encryption happens before it gets here.
 */
export interface PortalStore {
  /**
   * Stores a copy durably: the ciphertext stream first, then the record. Writing the same id again (a hand-over
   * replayed after a crash) replaces both. Rejects, storing no record, when the stream errors (EnqueueAbortedError).
   * The record is written as `item` is once the stream has ended, so a producer may fill in fields it computes
   * while streaming (e.g. size).
   */
  putPortalCopy(item: PortalItem, ciphertext: Readable): Promise<void>;
  getPortalItem(id: string): Promise<PortalItem | undefined>;
  /** The item whose live link token hashes to `tokenHash`, if any. */
  findPortalItemByToken(tokenHash: string): Promise<PortalItem | undefined>;
  /** Items oldest first. */
  listPortalItems(filter?: PortalFilter): Promise<PortalItem[]>;
  /**
   * Read-modify-write of one record: `mutate` gets the current record and returns the new one, stored with
   * version + 1 (the token index follows tokenHash). Retried on a concurrent change; NotFoundError when gone.
   */
  updatePortalItem(id: string, mutate: (item: PortalItem) => PortalItem): Promise<PortalItem>;
  /** The ciphertext; NotFoundError when there is none (shredded or never stored). */
  openPortalCiphertext(id: string): Promise<Readable>;
  /**
   * Crypto-shreds a copy: durably clears kid, wrappedKey and sealed first, then removes the ciphertext. The
   * record (state, times, tokenHash, so the link shows the item's final state) and the audit trail stay. Idempotent.
   */
  shredPortalCopy(id: string): Promise<void>;
  /** Appends to the item's hash chain atomically (several relays may append at once); returns the stored event. */
  appendPortalEvent(itemId: string, event: PortalEventInput): Promise<PortalEvent>;
  /** The item's trail, oldest first. An entry that is not an event throws PortalTrailDamagedError (portal-chain.ts). */
  portalEvents(itemId: string): Promise<PortalEvent[]>;
}

/** Small shared key/value cache (MTA-STS policies, the portal's pre-auth state, codes, counters, sessions), with expiry. */
export interface KeyValueCache {
  cacheGet(namespace: string, key: string): Promise<string | undefined>;
  cacheSet(namespace: string, key: string, value: string, ttlMs: number): Promise<void>;
  cacheDelete(namespace: string, key: string): Promise<void>;
  /** Atomic increment; a missing (or expired) entry is created at 1 expiring after `ttlMs`; an existing one keeps its expiry. */
  cacheIncrement(namespace: string, key: string, ttlMs: number): Promise<number>;
}

/** One counter of TLS-RPT sessions: how many sessions a (policy, failure detail) pair saw on one day for one domain. */
export interface TlsRptTally {
  /** The caller's policy key, as given to tlsRptCount. */
  policy: string;
  /** The caller's failure-detail key; null for successful sessions. */
  detail: string | null;
  count: number;
}

/**
 * TLS session counters per UTC day and policy domain (RFC 8460 reports). The keys are opaque strings the
 * caller builds; the store only adds them up. Several relays on one Redis add into the same counters.
 * Days are `YYYY-MM-DD`; anything else is refused.
 */
export interface TlsRptCounters {
  /** Adds `count` (default 1) sessions to a counter, creating it; `detail` null counts successes. */
  tlsRptCount(day: string, domain: string, policy: string, detail: string | null, count?: number): Promise<void>;
  /** Domains with any counter on that day, sorted. */
  tlsRptDomains(day: string): Promise<string[]>;
  /** Every counter of a domain on a day (empty when none). */
  tlsRptRead(domain: string, day: string): Promise<TlsRptTally[]>;
  /** Drops the counters of days before `before` (YYYY-MM-DD); returns how many days went. */
  tlsRptPrune(before: string): Promise<number>;
}

/** A TLS-RPT day: `YYYY-MM-DD`, as the counters are keyed (also keeps file names and keys tame). */
export const TLSRPT_DAY = /^\d{4}-\d{2}-\d{2}$/;

/**
 * The evidence log: every recipient outcome, admin action and portal event, kept apart from the queue (deleting
 * or purging messages never touches it) for `evidence.retention`, append-only and hash-chained (evidence-chain.ts
 * builds and checks every record and anchor, for both backends). One log, one chain, however many relays append
 * to it. Records go into daily segments by the day they were appended; a day is sealed by an anchor stored apart.
 */
export interface EvidenceLog {
  /**
   * Appends the records in order as one batch and resolves once they are durable (file: written and fsynced,
   * with concurrent batches sharing one fsync; Redis: acknowledged by the server). Returns them as stored.
   * Seals every earlier day that has records and no anchor first (the first append of a new day seals the last).
   */
  appendEvidence(records: readonly EvidenceRecordInput[]): Promise<EvidenceRecord[]>;
  /**
   * Records matching the query, oldest first (by seq). Ids (queueId, messageId, recipient, domain) go through the
   * store's indexes; from/to limit the days read (the days from the day before `from` through the day of `to`,
   * since a record's day is when it was logged, at or just after `at`). Never reads every day for an id look-up.
   * Lines that do not parse are skipped here (verify names them).
   */
  queryEvidence(query: EvidenceQuery): AsyncIterable<EvidenceRecord>;
  /** Days that hold records (or held: an anchored day whose records are gone is still listed), oldest first. */
  evidenceDays(): Promise<string[]>;
  /** A day's stored lines in stored order, unparsed, so verify can name a damaged line; [] for a day with none. */
  readEvidenceDay(day: string): Promise<string[]>;
  /** Every anchor, oldest first. */
  evidenceAnchors(): Promise<EvidenceAnchor[]>;
  /** The record after which the kept log starts (null until a prune). */
  evidenceBase(): Promise<EvidenceBase | null>;
  /** The newest record (the chain's head), if any. */
  evidenceHead(): Promise<EvidenceRecord | undefined>;
  /** Seals every day before the day of `now` that has records and no anchor yet; returns the anchors written. */
  sealEvidence(now?: number): Promise<EvidenceAnchor[]>;
  /**
   * Removes every whole day before `beforeDay` (YYYY-MM-DD): records, index entries and anchors, sealing them first,
   * and sets the base to the last removed day. Never removes the open day. The caller records the prune
   * ('evidence-pruned', with the result) right after.
   */
  pruneEvidence(beforeDay: string): Promise<EvidencePruneResult>;
}

/**
 * Damaged entries set aside. Reads that meet a damaged record (schema, size or checksum) quarantine it
 * themselves and skip it; these are for the delivery side (a result that cannot be recorded) and operators.
 */
export interface QuarantineStore {
  /**
   * Sets a whole message aside (record, jobs, body, fallback items), out of every schedule, logged once.
   * Idempotent: a message already gone or quarantined is left alone.
   */
  quarantineMessage(messageId: string, kind: QuarantineKind, reason: string, jobId?: string): Promise<void>;
  /** Quarantined entries, oldest first. */
  listQuarantined(): Promise<QuarantineEntry[]>;
  /** Deletes quarantined entries set aside before `before` (epoch ms) with whatever was kept; returns them. */
  purgeQuarantined(before: number): Promise<QuarantineEntry[]>;
}

export interface Retention {
  /**
   * Removes bodies no longer needed (every job final, every fallback item acked) and, once keepFinished has
   * passed since the last job became final, the record with its acked fallback items. Never touches a message
   * with a non-final job, and never portal copies. Quarantined entries older than the quarantine retention go
   * too. Returns how many message records it removed.
   */
  sweep(now?: number): Promise<number>;
}
