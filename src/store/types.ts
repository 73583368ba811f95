import type { Readable } from 'node:stream';

/**
 * The queue's data model and the one Store interface both backends (file, redis) implement.
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
  params: { bodyType?: '7BIT' | '8BITMIME'; smtpUtf8?: boolean; requireTls?: boolean; dsn?: DsnEnvelope };
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
  /** Only messages received at least this long ago (ms). */
  olderThan?: number;
  limit?: number;
  offset?: number;
}

export interface FallbackFilter {
  state?: FallbackState;
  limit?: number;
  offset?: number;
}

export interface StoreCounts {
  jobs: Record<JobState, number>;
  fallback: Record<FallbackState, number>;
  messages: number;
}

/** Thrown for an operation on an id the store does not hold. */
export class NotFoundError extends Error {
  override name = 'NotFoundError';
}

/** Thrown when a lease or claim is no longer held by the caller (expired and taken by another). */
export class LeaseLostError extends Error {
  override name = 'LeaseLostError';
}

/** Thrown when a body stream is aborted or too large, so nothing was stored. */
export class EnqueueAbortedError extends Error {
  override name = 'EnqueueAbortedError';
}

/** Thrown while the store's backend cannot be reached (Redis down); the operation may succeed later. */
export class StoreUnavailableError extends Error {
  override name = 'StoreUnavailableError';
}

export interface Store {
  readonly kind: 'file' | 'redis';
  /** Opens connections, creates folders, recovers or quarantines damaged entries. */
  open(): Promise<void>;
  close(): Promise<void>;
  /** Cheap liveness check for /readyz. */
  ping(): Promise<void>;

  /**
   * Streams a message body into the store. Resolves only once message, body and jobs are durable;
   * rejects (storing nothing) if the body stream errors. The body is stored byte for byte.
   */
  enqueue(message: NewMessage, body: Readable, headers?: HeaderFacts): Promise<MessageRecord>;
  getMessage(id: string): Promise<MessageRecord | undefined>;
  listMessages(filter?: MessageFilter): Promise<MessageRecord[]>;
  openBody(id: string): Promise<Readable>;

  /** Leases up to `limit` due jobs (queued/deferred with dueAt <= now, or leased with an expired lease). */
  claimDue(owner: string, limit: number, leaseMs: number, now?: number): Promise<ClaimedJob[]>;
  /** Extends a lease the caller still holds; throws LeaseLostError otherwise. */
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

  /**
   * Admin actions on every non-final job of a message. hold: queued/deferred -> held (an attempt already
   * under way completes and its results are kept, its pending recipients stay held). release: held -> the
   * state it had, keeping its dueAt. retryNow: dueAt = now (held jobs stay held, due at once when released).
   * deleteMessage: the message, its body, jobs and fallback items.
   */
  hold(messageId: string): Promise<MessageRecord>;
  release(messageId: string): Promise<MessageRecord>;
  retryNow(messageId: string): Promise<MessageRecord>;
  deleteMessage(messageId: string): Promise<void>;
  counts(): Promise<StoreCounts>;

  listFallback(filter?: FallbackFilter): Promise<FallbackItem[]>;
  getFallback(id: string): Promise<FallbackItem | undefined>;
  claimFallback(owner: string, limit: number, leaseMs: number, now?: number): Promise<FallbackItem[]>;
  ackFallback(id: string, owner: string): Promise<void>;
  /**
   * Puts the recipient back into delivery (its job becomes queued and due now, or stays held) and drops the
   * item. Refused (Error) once the item was acked: the portal already handed the message over.
   */
  releaseFallback(id: string): Promise<void>;
  deleteFallback(id: string): Promise<void>;

  /** Small shared key/value cache (MTA-STS policies), with expiry. */
  cacheGet(namespace: string, key: string): Promise<string | undefined>;
  cacheSet(namespace: string, key: string, value: string, ttlMs: number): Promise<void>;
  cacheDelete(namespace: string, key: string): Promise<void>;

  /**
   * Removes bodies no longer needed (every job final, every fallback item acked) and, once keepFinished has
   * passed since the last job became final, the record with its acked fallback items. Never touches a message
   * with a non-final job. Returns how many message records it removed.
   */
  sweep(now?: number): Promise<number>;
}
