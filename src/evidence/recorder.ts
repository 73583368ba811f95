import type { Logger } from '../log/logger';
import type { EvidenceLog, EvidenceRecordInput, FallbackItem, PortalEvent, RecipientResult } from '../store/types';
import type { AdminActionEntry, AuditLog } from './audit-log';
import { toAuditEntry, type AuditEntry } from './delivery';

/**
 * What every producer writes to the evidence log (the store's EvidenceLog role): recipient outcomes (the delivery
 * engine), admin actions (admin API and CLI) and portal events (PortalCopies). The evidence log is the durable
 * record: a producer awaits its append before it acts on the result (records the outcome, answers 2xx, exits 0),
 * so a crash never leaves an outcome or an action without its record. The audit file (`audit.file`) is kept as a
 * plain mirror of the same lines as before, written after the append and not fsynced: one fsync per result, the
 * evidence log's, is what the hot path pays. Never message content: ids, addresses, times, TLS facts, replies.
 */

/** The message a result belongs to, as far as its evidence needs it. */
export interface OutcomeMessage {
  id: string;
  /** Envelope sender ('' for the null sender). */
  from: string;
  headers: { messageId?: string };
}

/** The indexed keys of a record that is about a message, a recipient or a portal item; null where none. */
export interface EvidenceSubject {
  queueId?: string | null;
  messageId?: string | null;
  recipient?: string | null;
  sender?: string | null;
}

/** The keys of an action on a message: its queue id, Message-ID and envelope sender. */
export function messageSubject(message: OutcomeMessage): EvidenceSubject {
  return { queueId: message.id, messageId: message.headers.messageId ?? null, sender: message.from };
}

/** The keys of an action on a fallback item: its message's ids, its recipient and sender. */
export function fallbackSubject(item: Pick<FallbackItem, 'queueId' | 'messageId' | 'recipient' | 'from'>): EvidenceSubject {
  return { queueId: item.queueId, messageId: item.messageId ?? null, recipient: item.recipient, sender: item.from };
}

/** A recipient outcome record: `data` is the AuditEntry exactly as the audit file and `sealgate audit --json` show it. */
export type OutcomeRecord = EvidenceRecordInput & { kind: 'recipient-outcome'; data: AuditEntry & Record<string, unknown> };

const lower = (value: string | null | undefined): string | null => (typeof value === 'string' ? value.toLowerCase() : null);

/** One recipient outcome of a result as its evidence record; `at` is the evidence time. */
export function outcomeRecord(message: OutcomeMessage, result: Pick<RecipientResult, 'address' | 'evidence'>): OutcomeRecord {
  const entry = toAuditEntry(message.id, message.headers.messageId, result.address, result.evidence);
  return {
    kind: 'recipient-outcome',
    at: result.evidence.at,
    queueId: message.id,
    messageId: message.headers.messageId ?? null,
    recipient: result.address.toLowerCase(),
    sender: message.from,
    actor: 'relay',
    data: entry as AuditEntry & Record<string, unknown>,
  };
}

/**
 * An admin action as its evidence record: `data` is the AdminActionEntry the audit file holds; the keys come from
 * the subject the caller names (the message or fallback item acted on), else from the entry's own `queueId` and
 * `recipient` fields (fallback actions carry them). `actor` is the record's: 'admin:<token>' or 'cli:<user>'.
 */
export function actionRecord(entry: AdminActionEntry, at: number, subject: EvidenceSubject = {}, actor: string = entry.actor): EvidenceRecordInput {
  const field = (name: string): string | null => (typeof entry[name] === 'string' ? entry[name] : null);
  return {
    kind: 'admin-action',
    at,
    queueId: subject.queueId ?? field('queueId'),
    messageId: subject.messageId ?? null,
    recipient: lower(subject.recipient ?? field('recipient')),
    sender: subject.sender ?? null,
    actor,
    data: { ...entry },
  };
}

/**
 * A portal item's trail entry mirrored into the evidence log: `data` is the stored PortalEvent as the trail holds
 * it (ids, type, actor, client address, user-agent hash, detail, its hashes), nothing more; never the subject.
 */
export function portalEventRecord(event: PortalEvent, subject: EvidenceSubject): EvidenceRecordInput {
  return {
    kind: 'portal-event',
    at: event.at,
    queueId: subject.queueId ?? null,
    messageId: subject.messageId ?? null,
    recipient: lower(subject.recipient),
    sender: subject.sender ?? null,
    actor: event.actor,
    data: { ...event },
  };
}

/** Writes evidence records: the evidence log first (durable), then the audit-file mirror. */
export interface EvidenceRecorder {
  /** The outcomes of one result; resolves once they are durable in the evidence log (then mirrored). */
  recordOutcomes(message: OutcomeMessage, results: ReadonlyArray<Pick<RecipientResult, 'address' | 'evidence'>>): Promise<void>;
  /**
   * One admin action; resolves once it is durable in the evidence log (then mirrored). `actor` is the record's
   * ('admin:<token>' for the API, whose entries name the token only; default: the entry's, 'cli:<user>').
   */
  recordAction(entry: AdminActionEntry, subject?: EvidenceSubject, actor?: string): Promise<void>;
  /** One portal trail entry (not mirrored: the audit file never held portal events). */
  recordPortalEvent(event: PortalEvent, subject: EvidenceSubject): Promise<void>;
  /** Closes the mirror (the evidence log belongs to the store). */
  close(): Promise<void>;
}

/** Where PortalCopies mirrors every trail entry it appends. */
export type PortalEventEvidence = Pick<EvidenceRecorder, 'recordPortalEvent'>;

/** Portal events straight into the evidence log (the CLI and the relay build PortalCopies with it). */
export function portalEventEvidence(log: Pick<EvidenceLog, 'appendEvidence'>): PortalEventEvidence {
  return {
    async recordPortalEvent(event, subject) {
      await log.appendEvidence([portalEventRecord(event, subject)]);
    },
  };
}

export interface EvidenceRecorderDeps {
  log: Pick<EvidenceLog, 'appendEvidence'>;
  /** The audit file (or main log) the records are mirrored to; created with `fsync: false`. */
  mirror: AuditLog<AuditEntry>;
  logger: Logger;
  now?: () => number;
}

export function createEvidenceRecorder({ log, mirror, logger, now = Date.now }: EvidenceRecorderDeps): EvidenceRecorder {
  // The durable record is already written when the mirror is: a mirror failure is logged, never thrown.
  const mirrored = (write: () => void | Promise<void>): Promise<void> =>
    Promise.resolve()
      .then(write)
      .catch((err: Error) => logger.warn({ event: 'audit-mirror-failed', err: err.message }, 'could not write the audit file mirror; the evidence log holds the record'));
  return {
    async recordOutcomes(message, results) {
      if (results.length === 0) return;
      const records = results.map((result) => outcomeRecord(message, result));
      await log.appendEvidence(records);
      await mirrored(() => mirror.recordAll(records.map((r) => r.data)));
    },
    async recordAction(entry, subject, actor) {
      await log.appendEvidence([actionRecord(entry, now(), subject, actor)]);
      await mirrored(() => mirror.action(entry));
    },
    recordPortalEvent: portalEventEvidence(log).recordPortalEvent,
    close: () => mirror.close(),
  };
}
