/**
 * The queue's data model: messages, per-domain jobs, recipients, fallback items. The Store both backends
 * (file, redis) implement is a set of roles (roles.ts); types.ts is the one import for both.
 * One message has one job per recipient domain; each recipient in a job has its own state and
 * evidence, because a single SMTP transaction can accept some recipients and refuse others.
 */

export type JobState = 'queued' | 'deferred' | 'held' | 'leased' | 'delivered' | 'diverted' | 'bounced';
export type RecipientState = 'pending' | 'delivered' | 'diverted' | 'bounced';
export type RecipientOutcome = 'delivered' | 'diverted' | 'bounced' | 'deferred';

export const FINAL_JOB_STATES: ReadonlySet<JobState> = new Set(['delivered', 'diverted', 'bounced']);
export const JOB_STATES: readonly JobState[] = ['queued', 'deferred', 'held', 'leased', 'delivered', 'diverted', 'bounced'];

export interface DsnEnvelope {
  ret?: 'FULL' | 'HDRS';
  envid?: string;
}

export interface RecipientInput {
  /** Normalised address (lower-cased domain, source route removed). */
  address: string;
  /** RFC 3461 per-recipient parameters, when the client gave them. */
  notify?: string[];
  orcpt?: string;
}

/** What the inbound side knows about a message when it starts streaming it into the store. */
export interface NewMessage {
  /** Envelope sender; '' for the null sender `<>`. */
  from: string;
  recipients: RecipientInput[];
  /** MAIL parameters that change handling downstream. */
  params: {
    bodyType?: '7BIT' | '8BITMIME';
    smtpUtf8?: boolean;
    requireTls?: boolean;
    dsn?: DsnEnvelope;
    /** A portal notice (link, code, reminder, sender notice): delivered with opportunistic TLS, never diverted, no DSN. */
    notice?: { itemId?: string; kind: string };
    /**
     * Mail the relay sends its own staff (kind 'report': a scheduled compliance report): compliant TLS only, never
     * opportunistic, never diverted (the portal is for partners); deferred, then bounced at expiry with no DSN.
     */
    compliantOnly?: { kind: string };
    /** A TLS-RPT report the relay sends itself: its sessions are not counted in the next report (RFC 8460 §5.3). */
    tlsReport?: boolean;
    /** The submitter's per-message portal choices (X-Sealgate-Portal-* headers, stripped before storage); the admin's settings bound them. */
    portal?: { notify?: boolean; expiry?: number; methods?: PortalAuthMethod[]; secretHash?: string };
  };
  client: { ip: string; hostname?: string; helo?: string; user?: string; listener: string; tls?: { protocol: string; cipher: string } };
  receivedAt: number;
}

/** Header facts extracted by mailparser; stored as metadata, never logged. */
export interface HeaderFacts {
  messageId?: string;
  from?: string;
  date?: string;
  /** Value of the RFC 8689 TLS-Required header, as sent (e.g. "No"). */
  tlsRequired?: string;
}

/** How JobQueue.enqueue stores a message. */
export interface EnqueueOptions {
  /**
   * The id to store it under (a newMessageId() the caller chose), so a write retried after an ambiguous failure
   * (it landed, the reply did not) finds the first: when a message with this id exists, nothing new is stored and
   * the stored record is returned. Without it the store picks a new id.
   */
  id?: string;
}

/** Evidence of one delivery attempt or decision for one recipient: free-form facts plus a few fixed names. */
export interface Evidence {
  at: number;
  outcome: RecipientOutcome;
  /** Short machine-readable reason code, e.g. "starttls-not-offered", "rcpt-550", "delivered". */
  reason: string;
  mx?: string | null;
  ip?: string | null;
  reply?: string | null;
  [fact: string]: unknown;
}

export interface RecipientRecord extends RecipientInput {
  state: RecipientState;
  /** Attempts and decisions, oldest first. */
  history: Evidence[];
  /** When the delay warning DSN (RFC 3464 action delayed) was queued for this recipient; it is sent once. */
  delayWarnedAt?: number;
}

export interface JobRecord {
  /** `<messageId>/<domain>`: unique in the store. */
  id: string;
  messageId: string;
  domain: string;
  /**
   * 'leased' is never stored: it is shown while a lease is held on a queued or deferred job (a hold placed
   * during an attempt shows 'held' and is kept when the attempt completes). When a job's recipients end
   * differently its final state is the most significant one: diverted > bounced > delivered.
   */
  state: JobState;
  recipients: RecipientRecord[];
  /** When a queued or deferred job becomes due (epoch ms). */
  dueAt: number;
  attempts: number;
  createdAt: number;
  updatedAt: number;
  lease?: { owner: string; expiresAt: number };
  /** Set while held: the state to return to on release. */
  heldFrom?: 'queued' | 'deferred';
  lastReason?: string;
}

export interface MessageRecord {
  id: string;
  from: string;
  size: number;
  receivedAt: number;
  params: NewMessage['params'];
  client: NewMessage['client'];
  headers: HeaderFacts;
  jobs: JobRecord[];
  /** True once the body is gone (all jobs final, no fallback item needs it). */
  bodyRemoved?: boolean;
  /** SHA-256 (hex) of the body as stored at enqueue; absent on records written before bodies had one (size-checked only). */
  sha256?: string;
  /**
   * Set when an admin deleted the message but some recipients had already reached a final state: the body,
   * fallback items and pending recipients are gone, the final outcomes stay (evidence) until retention.
   */
  deletedAt?: number;
}

/** A leased job handed to a delivery worker, with what it needs from its message. */
export interface ClaimedJob {
  job: JobRecord;
  message: Omit<MessageRecord, 'jobs'>;
  /**
   * True when the job was taken over from an expired lease: the previous worker may have delivered before
   * it stopped, so log a possible duplicate. (The file store keeps leases in memory, so after a relay crash
   * it cannot tell; this is only set for leases that expired while the process ran.)
   */
  resumed?: boolean;
}

/** Per-recipient result of one delivery attempt of a job. */
export interface RecipientResult {
  address: string;
  outcome: RecipientOutcome;
  evidence: Evidence;
  /** For diverted recipients: the reason code shown to the portal and admins. */
  divertReason?: string;
  /** Set when this attempt queued the recipient's delay warning: stored with the recipient so it is never sent again. */
  delayWarnedAt?: number;
}

export interface JobResult {
  recipients: RecipientResult[];
  /** When deferred recipients become due again (required if any outcome is `deferred`). */
  retryAt?: number;
}

export type FallbackState = 'ready' | 'claimed' | 'acked';

export interface FallbackItem {
  id: string;
  queueId: string;
  jobId: string;
  messageId?: string;
  from: string;
  recipient: string;
  reason: string;
  evidence: Evidence[];
  divertedAt: number;
  state: FallbackState;
  claim?: { owner: string; expiresAt: number };
  ackedAt?: number;
}

export interface MessageFilter {
  state?: JobState;
  domain?: string;
  sender?: string;
  /** Only messages with this envelope recipient (case-insensitive). */
  recipient?: string;
  /** Also the evidence-only records of deleted messages (left out by default). */
  includeDeleted?: boolean;
  /** Only messages received at least this long ago (ms). */
  olderThan?: number;
  limit?: number;
  offset?: number;
}

export interface FallbackFilter {
  state?: FallbackState;
  /** Only items whose recipient is in this domain. */
  domain?: string;
  /** Only items for this recipient (case-insensitive). */
  recipient?: string;
  /** Only items diverted at or after this time (epoch ms). */
  since?: number;
  limit?: number;
  offset?: number;
}

/** Which jobs of a message an admin action touches: all non-final ones, or only those of one domain. */
export interface JobScope {
  domain?: string;
}

export interface StoreCounts {
  jobs: Record<JobState, number>;
  fallback: Record<FallbackState, number>;
  messages: number;
  /** Damaged entries set aside (see QuarantineEntry), kept until queue.quarantineRetention has passed. */
  quarantined: number;
}

/**
 * Jobs waiting for delivery: queued, deferred or under an attempt (held and final jobs are left out), read from
 * the store's schedule of waiting jobs rather than from every record (metrics scrapes ask for it).
 */
export interface WaitingJobs {
  total: number;
  /** When the oldest waiting job's message arrived (epoch ms, read from its queue id); null when nothing waits. */
  oldestArrival: number | null;
  /** Waiting jobs per recipient domain. */
  byDomain: Record<string, number>;
}

/**
 * What a damaged entry was: a message record, one of its jobs, its body, a fallback item, a job whose result
 * could not be recorded, or (file store) a leftover file such as an unfinished temp file.
 */
export type QuarantineKind = 'message' | 'job' | 'body' | 'fallback' | 'result' | 'file';
/** Short, bounded cause codes (metric labels): the free-text reason says more. */
export type QuarantineCode = 'invalid-json' | 'invalid-record' | 'body-size' | 'body-checksum' | 'body-missing' | 'result-unrecorded' | 'debris';

/** A damaged entry set aside so it never blocks other work. Holds ids, times and reasons only, never content. */
export interface QuarantineEntry {
  /** Message id (or fallback item id, or file name for debris). */
  id: string;
  kind: QuarantineKind;
  code: QuarantineCode;
  reason: string;
  /** When it was set aside (epoch ms). */
  at: number;
  /** The job whose record or result was damaged, when known. */
  jobId?: string;
}

/** Told of every entry a store sets aside (metrics). */
export interface StoreObserver {
  quarantined(entry: QuarantineEntry): void;
}

/**
 * A recipient's encrypted portal copy. Only ids, states, times, a keyed hash of the recipient and the wrapped
 * data key are in clear; recipient, sender, subject and the message itself are sealed under the item's own
 * data key, so destroying `wrappedKey` (crypto-shredding) makes everything else unreadable.
 */
export type PortalState = 'stored' | 'notified' | 'notify-failed' | 'opened' | 'read' | 'expired' | 'revoked' | 'released' | 'purged';
export type PortalAuthMethod = 'email-otp' | 'secret';

export interface PortalItem {
  /** The fallback item's id: one portal copy per diverted recipient and attempt. */
  id: string;
  queueId: string;
  jobId: string;
  /** HMAC-SHA256 (hex) of the lower-cased recipient address under the keyring's lookup key. */
  recipientHash: string;
  /** Key-encryption key id and the data key wrapped by it (base64); both null once shredded. */
  kid: string | null;
  wrappedKey: string | null;
  /** PortalSealedFacts as JSON, AES-256-GCM under the data key (base64); null once shredded. */
  sealed: string | null;
  /** SHA-256 (hex) of the current link token; null when no link is live. */
  tokenHash: string | null;
  state: PortalState;
  /** The state a revoked item returns to on restore. */
  revokedFrom?: PortalState;
  /** Plaintext size of the message (bytes) and the ciphertext chunk size it was written with. */
  size: number;
  chunkSize: number;
  /** How the recipient may authenticate, and the slow hash of a sender-supplied secret (scrypt, self-describing). */
  auth: { methods: PortalAuthMethod[]; secretHash?: string };
  createdAt: number;
  expiresAt: number;
  updatedAt: number;
  notifiedAt?: number;
  openedAt?: number;
  readAt?: number;
  remindedAt?: number;
  /** Queue id of the last notice sent for this item (its delivery evidence lives with that message). */
  noticeQueueId?: string;
  /** Optimistic concurrency: bumped by every update. */
  version: number;
}

/** What is sealed inside PortalItem.sealed. */
export interface PortalSealedFacts {
  recipient: string;
  from: string;
  messageId?: string;
  subject?: string;
  date?: string;
}

/** One entry of an item's append-only audit trail. `hash` = SHA-256(prevHash + canonical JSON of the other fields). */
export interface PortalEvent {
  itemId: string;
  seq: number;
  at: number;
  /** portal.stored, notify.sent, notify.failed, link.prefetch, link.opened, otp.sent, otp.failed, otp.locked, auth.success, message.viewed, attachment.downloaded, expiry.warned, message.expired, admin.* ... */
  type: string;
  /** 'relay', 'recipient', 'admin:<token name>', 'cli:<user>'. */
  actor: string;
  ip?: string | null;
  /** SHA-256 (hex, first 16 chars) of the User-Agent header. */
  uaHash?: string | null;
  detail?: Record<string, string | number | boolean | null>;
  prevHash: string;
  hash: string;
}

export type PortalEventInput = Omit<PortalEvent, 'itemId' | 'seq' | 'prevHash' | 'hash'>;

export interface PortalFilter {
  state?: PortalState;
  /** Only items whose expiresAt is at or before this time. */
  expiresBefore?: number;
  limit?: number;
  offset?: number;
}

/**
 * What an evidence record is about: a recipient's final or interim outcome (delivered, diverted, bounced,
 * deferred, with its DeliveryEvidence audit entry), an admin action (API or CLI), a portal event (an item's
 * trail entry, mirrored), or the log's own housekeeping (a prune, a scheduled report written).
 */
export type EvidenceKind = 'recipient-outcome' | 'admin-action' | 'portal-event' | 'evidence-pruned' | 'report-generated';
export const EVIDENCE_KINDS: readonly EvidenceKind[] = ['recipient-outcome', 'admin-action', 'portal-event', 'evidence-pruned', 'report-generated'];

/** One record as a producer hands it to the evidence log. Addresses, ids, times, TLS facts, replies, reasons: never content. */
export interface EvidenceRecordInput {
  kind: EvidenceKind;
  /** When it happened (epoch ms), as the producer saw it. */
  at: number;
  /** Indexed look-up keys; null when the record has none (an admin action on the config, a prune). */
  queueId: string | null;
  /** The Message-ID header, as received. */
  messageId: string | null;
  /** The recipient address, lower-cased; its domain is indexed too. */
  recipient: string | null;
  /** The envelope sender ('' for the null sender), so reports can filter by it. */
  sender: string | null;
  /** Who did it: 'relay', 'admin:<token>', 'cli:<user>', 'recipient' (portal). */
  actor: string;
  /** The record itself: an AuditEntry, an AdminActionEntry, a PortalEvent, a prune summary. Plain JSON. */
  data: Record<string, unknown>;
}

/** A stored record: the input plus its place in the hash chain. */
export interface EvidenceRecord extends EvidenceRecordInput {
  /** Position in the log, 1, 2, 3, ... with no gaps across days (one log however many relays append). */
  seq: number;
  /** The UTC day (YYYY-MM-DD) of the segment holding it: the day it was appended. */
  day: string;
  /** When the log appended it (epoch ms); decides the day. */
  loggedAt: number;
  /** The hash of the record before it (GENESIS for the very first record). */
  prevHash: string;
  /** SHA-256 hex over prevHash and the canonical JSON of every other field (evidence-chain.ts). */
  hash: string;
}

/**
 * A day's seal, kept apart from the day's records (another folder or key, and copied into every report): how
 * many records the day holds, its first and last sequence numbers and hashes. Anchors chain too, so
 * deleting a whole day together with its anchor shows.
 */
export interface EvidenceAnchor {
  day: string;
  firstSeq: number;
  lastSeq: number;
  count: number;
  /** prevHash of the day's first record: the previous day's lastHash (or GENESIS). */
  firstPrevHash: string;
  lastHash: string;
  sealedAt: number;
  /** hash of the previous anchor (GENESIS for the first). */
  prevAnchorHash: string;
  hash: string;
}

/**
 * Where the log starts after a prune: the last removed day's anchor, so the first kept record's prevHash and the
 * first kept anchor's prevAnchorHash can still be checked. Null while nothing was pruned.
 */
export interface EvidenceBase {
  /** The last day removed. */
  prunedThrough: string;
  lastSeq: number;
  lastHash: string;
  anchorHash: string;
  prunedAt: number;
}

/** A look-up: every condition given must hold; ids use the store's indexes, from/to limit the days read. */
export interface EvidenceQuery {
  /** Inclusive lower bound on `at` (epoch ms). */
  from?: number;
  /** Exclusive upper bound on `at` (epoch ms). */
  to?: number;
  queueId?: string;
  messageId?: string;
  /** Compared lower-cased. */
  recipient?: string;
  /** Recipient domain, compared lower-cased. */
  domain?: string;
  /** Envelope sender, compared lower-cased ('' matches the null sender). */
  sender?: string;
  kinds?: readonly EvidenceKind[];
  /** Stop after this many records (oldest first). */
  limit?: number;
}

/** What a prune removed: whole days, with the anchor of each (also recorded in the 'evidence-pruned' record). */
export interface EvidencePruneResult {
  days: string[];
  records: number;
  anchors: EvidenceAnchor[];
  /** The new base (unchanged when nothing was removed). */
  base: EvidenceBase | null;
}
