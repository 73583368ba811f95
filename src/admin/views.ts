import { toAuditEntry, type AuditEntry } from '../evidence/delivery';
import type { FallbackItem, MessageRecord, Store } from '../store/types';

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
export async function findMessages(store: Store, id: string): Promise<MessageRecord[]> {
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
