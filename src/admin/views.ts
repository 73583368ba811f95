import { toAuditEntry, type AuditEntry } from '../evidence/delivery';
import { bracketedMessageId } from '../evidence/search';
import { arrivalOf, isMessageId } from '../store/ids';
import type { EvidenceKind, EvidenceLog, EvidenceQuery, EvidenceRecord, FallbackItem, MessageRecord, Store } from '../store/types';

/**
 * The JSON shapes admins and scripts see, shared by the CLI (`--json`) and the HTTP API so both
 * always agree. Stable names: add fields freely, never rename. Header facts only: no subject, no body.
 */

/** One queued message in a listing (`sealgate queue list --json`). */
export interface QueueListEntry {
  id: string;
  messageId: string | null;
  from: string;
  size: number;
  receivedAt: string;
  state: string;
  recipients: Array<{ address: string; domain: string; state: string }>;
}

export function toListEntry(message: MessageRecord): QueueListEntry {
  const recipients = message.jobs.flatMap((job) =>
    job.recipients.map((rcpt) => ({
      address: rcpt.address,
      domain: job.domain,
      // A recipient still pending takes its job's state (queued, deferred, held, leased).
      state: rcpt.state === 'pending' ? job.state : rcpt.state,
    })),
  );
  return {
    id: message.id,
    messageId: message.headers.messageId ?? null,
    from: message.from,
    size: message.size,
    receivedAt: new Date(message.receivedAt).toISOString(),
    state: summaryState(message),
    recipients,
  };
}

/** One word for a message whose jobs may differ: the least advanced job state wins. */
export function summaryState(message: MessageRecord): string {
  if (message.deletedAt !== undefined) return 'deleted';
  const states = new Set(message.jobs.map((job) => job.state));
  for (const state of ['leased', 'queued', 'deferred', 'held', 'diverted', 'bounced', 'delivered'] as const) {
    if (states.has(state)) return states.size > 1 && state !== 'leased' ? `${state}+` : state;
  }
  return 'empty';
}

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

/** Everything about one message (`sealgate queue show --json`): envelope, header facts, jobs, recipients, evidence. */
export function toMessageDetail(message: MessageRecord) {
  return {
    ...toListEntry(message),
    envelope: {
      from: message.from,
      recipients: message.jobs.flatMap((job) => job.recipients.map((r) => r.address)),
      params: message.params,
      client: message.client,
    },
    headers: message.headers,
    bodyRemoved: message.bodyRemoved ?? false,
    deletedAt: iso(message.deletedAt),
    jobs: message.jobs.map((job) => ({
      id: job.id,
      domain: job.domain,
      state: job.state,
      attempts: job.attempts,
      dueAt: iso(job.dueAt),
      createdAt: iso(job.createdAt),
      updatedAt: iso(job.updatedAt),
      heldFrom: job.heldFrom ?? null,
      lastReason: job.lastReason ?? null,
      lease: job.lease ? { owner: job.lease.owner, expiresAt: iso(job.lease.expiresAt) } : null,
      recipients: job.recipients.map((rcpt) => ({
        address: rcpt.address,
        state: rcpt.state === 'pending' ? job.state : rcpt.state,
        notify: rcpt.notify ?? null,
        orcpt: rcpt.orcpt ?? null,
        // When the sender was told this recipient is delayed (delivery.delayWarning); null: not (yet).
        delayWarnedAt: iso(rcpt.delayWarnedAt),
        evidence: rcpt.history.map((e) => toAuditEntry(message.id, message.headers.messageId, rcpt.address, e)),
      })),
    })),
  };
}

export type MessageDetail = ReturnType<typeof toMessageDetail>;

/** One fallback item (`sealgate fallback list --json`). */
export interface FallbackListEntry {
  id: string;
  queueId: string;
  messageId: string | null;
  from: string;
  recipient: string;
  reason: string;
  divertedAt: string;
  state: string;
}

export function toFallbackEntry(item: FallbackItem): FallbackListEntry {
  return {
    id: item.id,
    queueId: item.queueId,
    messageId: item.messageId ?? null,
    from: item.from,
    recipient: item.recipient,
    reason: item.reason,
    divertedAt: new Date(item.divertedAt).toISOString(),
    state: item.state,
  };
}

/** One fallback item with its claim and evidence (`sealgate fallback show --json`). */
export function toFallbackDetail(item: FallbackItem) {
  return {
    ...toFallbackEntry(item),
    jobId: item.jobId,
    claim: item.claim ? { owner: item.claim.owner, expiresAt: iso(item.claim.expiresAt) } : null,
    ackedAt: iso(item.ackedAt),
    evidence: item.evidence.map((e) => toAuditEntry(item.queueId, item.messageId, item.recipient, e)),
  };
}

/** A queue id, or a Message-ID with or without its angle brackets. */
export async function findMessages(store: Pick<Store, 'getMessage' | 'listMessages'>, id: string): Promise<MessageRecord[]> {
  const byQueueId = await store.getMessage(id);
  if (byQueueId) return [byQueueId];
  const wanted = id.startsWith('<') ? id : `<${id}>`;
  const all = await store.listMessages({ includeDeleted: true });
  return all.filter((m) => m.headers.messageId === wanted || m.headers.messageId === id);
}

/** The audit entries (`sealgate audit --json`) of one message, per recipient, oldest first per recipient. */
export function auditEntries(message: MessageRecord): AuditEntry[] {
  return message.jobs.flatMap((job) => job.recipients.flatMap((rcpt) => rcpt.history.map((evidence) => toAuditEntry(message.id, message.headers.messageId, rcpt.address, evidence))));
}

/** Audit entries of every message matching a queue id or Message-ID, in time order. */
export function auditTrail(messages: MessageRecord[]): AuditEntry[] {
  return messages.flatMap(auditEntries).sort((a, b) => a.at.localeCompare(b.at));
}

/** One message's outcome for one recipient (`sealgate audit --recipient A --json`): the help-desk answer. */
export interface RecipientOutcomeView {
  queueId: string;
  messageId: string | null;
  from: string;
  receivedAt: string;
  recipient: string;
  /** delivered, bounced, diverted, or (still pending) the job's state: queued, deferred, held, leased. */
  state: string;
  /** When an admin deleted the message (its final outcomes are kept as evidence), else null. */
  deletedAt: string | null;
  entries: AuditEntry[];
}

/**
 * Every message to `recipient` received since `since` (epoch ms), newest first, with that recipient's evidence.
 * Reads message records only (never bodies): one pass over the queue's records, including finished ones kept for
 * queue.keepFinished and the evidence of deleted ones.
 */
export async function recipientOutcomes(store: Pick<Store, 'listMessages'>, recipient: string, since?: number): Promise<RecipientOutcomeView[]> {
  const wanted = recipient.toLowerCase();
  const messages = await store.listMessages({ recipient: wanted, includeDeleted: true });
  const out: RecipientOutcomeView[] = [];
  for (const message of messages) {
    if (since !== undefined && message.receivedAt < since) continue;
    for (const job of message.jobs) {
      for (const rcpt of job.recipients) {
        if (rcpt.address.toLowerCase() !== wanted) continue;
        out.push({
          queueId: message.id,
          messageId: message.headers.messageId ?? null,
          from: message.from,
          receivedAt: new Date(message.receivedAt).toISOString(),
          recipient: rcpt.address,
          state: rcpt.state === 'pending' ? job.state : rcpt.state,
          deletedAt: iso(message.deletedAt),
          entries: rcpt.history.map((e) => toAuditEntry(message.id, message.headers.messageId, rcpt.address, e)),
        });
      }
    }
  }
  return out.sort((a, b) => b.receivedAt.localeCompare(a.receivedAt) || a.queueId.localeCompare(b.queueId));
}

/**
 * A message the evidence log knows of whose queue record is gone: deleted by an admin (the log holds the
 * 'queue-delete' action) or purged by retention (`queue.keepFinished`). Its outcomes come from the log.
 */
export interface LoggedMessage {
  id: string;
  messageId: string | null;
  from: string | null;
  /** Read from the queue id (it encodes the arrival time). */
  receivedAt: string | null;
  recordGone: true;
  /** When and by whom it was deleted, when the log holds the 'queue-delete' action; null: purged by retention. */
  deletedAt: string | null;
  deletedBy: string | null;
}

/** One answer of `sealgate audit ID` / GET /audit/:id: the queue's records, what only the log knows, every entry. */
export interface AuditAnswer {
  messages: MessageRecord[];
  logged: LoggedMessage[];
  /** Every outcome, from the records and the evidence log (each once), in time order. */
  entries: AuditEntry[];
  /** Set when the evidence log could not be read (the entries are then the records' only). */
  logError?: string;
}

/** Most evidence records one audit look-up reads (a queue id or Message-ID has a handful; this only bounds a runaway). */
const AUDIT_LOG_LIMIT = 10_000;

const entryKey = (e: AuditEntry): string => [e.queueId, e.recipient.toLowerCase(), e.at, e.outcome, e.reason].join('\n');

/** Adds the entries not already there (the same outcome is in the record's history and in the log). */
function mergeEntries(base: AuditEntry[], more: AuditEntry[]): AuditEntry[] {
  const seen = new Set(base.map(entryKey));
  const out = [...base];
  for (const entry of more) {
    const key = entryKey(entry);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(entry);
  }
  return out.sort((a, b) => a.at.localeCompare(b.at));
}

async function collect(log: Pick<EvidenceLog, 'queryEvidence'>, query: EvidenceQuery): Promise<EvidenceRecord[]> {
  const out: EvidenceRecord[] = [];
  for await (const record of log.queryEvidence({ ...query, limit: AUDIT_LOG_LIMIT })) out.push(record);
  return out;
}

/** The outcome and admin-action records of a queue id (or, failing that, a Message-ID) in the evidence log. */
async function loggedRecords(log: Pick<EvidenceLog, 'queryEvidence'>, id: string): Promise<EvidenceRecord[]> {
  const kinds: EvidenceKind[] = ['recipient-outcome', 'admin-action'];
  if (isMessageId(id)) {
    const byQueueId = await collect(log, { queueId: id, kinds });
    if (byQueueId.length > 0) return byQueueId;
  }
  return collect(log, { messageId: bracketedMessageId(id), kinds });
}

const isOutcome = (r: EvidenceRecord): boolean => r.kind === 'recipient-outcome' && r.queueId !== null;
const isDelete = (r: EvidenceRecord): boolean => r.kind === 'admin-action' && r.data.action === 'queue-delete' && r.queueId !== null;

/** What the log says of messages whose record is gone: ids, sender, and who deleted them (else: purged). */
function loggedMessages(records: EvidenceRecord[], known: Set<string>): LoggedMessage[] {
  const out = new Map<string, LoggedMessage>();
  for (const r of records.filter(isOutcome)) {
    const id = r.queueId!;
    if (known.has(id) || out.has(id)) continue;
    const arrival = arrivalOf(id);
    out.set(id, { id, messageId: r.messageId, from: r.sender, receivedAt: arrival === undefined ? null : new Date(arrival).toISOString(), recordGone: true, deletedAt: null, deletedBy: null });
  }
  for (const r of records.filter(isDelete)) {
    const message = out.get(r.queueId!);
    if (message) Object.assign(message, { deletedAt: new Date(r.at).toISOString(), deletedBy: r.actor });
  }
  return [...out.values()];
}

/**
 * `sealgate audit ID` and GET /audit/:id: the queue's records of a queue id or Message-ID, merged with the evidence
 * log's outcomes, so a message deleted or purged from the queue still shows every outcome. When the log cannot be
 * read the records still answer (logError says why); with no record either, the error is thrown.
 */
export async function auditAnswer(store: Pick<Store, 'getMessage' | 'listMessages' | 'queryEvidence'>, id: string): Promise<AuditAnswer> {
  const messages = await findMessages(store, id);
  let records: EvidenceRecord[];
  try {
    records = await loggedRecords(store, id);
  } catch (err) {
    if (messages.length === 0) throw err;
    return { messages, logged: [], entries: auditTrail(messages), logError: (err as Error).message };
  }
  const logged = loggedMessages(records, new Set(messages.map((m) => m.id)));
  const fromLog = records.filter(isOutcome).map((r) => r.data as unknown as AuditEntry);
  return { messages, logged, entries: mergeEntries(auditTrail(messages), fromLog) };
}

/**
 * `sealgate audit --recipient A` and GET /audit?recipient=: recipientOutcomes, plus the messages to that recipient
 * that only the evidence log still knows (their record deleted or purged), marked `recordGone: true`.
 */
export async function recipientAnswer(
  store: Pick<Store, 'listMessages' | 'queryEvidence'>,
  recipient: string,
  since?: number,
): Promise<{ items: Array<RecipientOutcomeView & { recordGone?: true }>; logError?: string }> {
  const items: Array<RecipientOutcomeView & { recordGone?: true }> = await recipientOutcomes(store, recipient, since);
  let records: EvidenceRecord[];
  try {
    records = await collect(store, { recipient: recipient.toLowerCase(), kinds: ['recipient-outcome'], ...(since !== undefined ? { from: since } : {}) });
  } catch (err) {
    return { items, logError: (err as Error).message };
  }
  const known = new Set(items.map((i) => i.queueId));
  const byQueueId = new Map<string, EvidenceRecord[]>();
  for (const r of records.filter(isOutcome)) {
    if (known.has(r.queueId!)) continue;
    byQueueId.set(r.queueId!, [...(byQueueId.get(r.queueId!) ?? []), r]);
  }
  for (const [queueId, outcomes] of byQueueId) {
    const arrival = arrivalOf(queueId);
    if (since !== undefined && arrival !== undefined && arrival < since) continue;
    const entries = outcomes.map((r) => r.data as unknown as AuditEntry);
    const last = entries[entries.length - 1]!;
    items.push({
      queueId,
      messageId: outcomes[0]!.messageId,
      from: outcomes[0]!.sender ?? '',
      receivedAt: new Date(arrival ?? outcomes[0]!.at).toISOString(),
      recipient: last.recipient,
      state: last.outcome,
      deletedAt: null,
      entries,
      recordGone: true,
    });
  }
  items.sort((a, b) => b.receivedAt.localeCompare(a.receivedAt) || a.queueId.localeCompare(b.queueId));
  return { items };
}
