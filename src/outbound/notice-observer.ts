import type { ClaimedJob, JobResult } from '../store/types';

/** One portal notice recipient whose outcome became final. */
export interface NoticeFinishedEvent {
  /** Queue id of the notice message. */
  queueId: string;
  itemId?: string;
  kind: string;
  recipient: string;
  outcome: 'delivered' | 'bounced';
  reason: string;
  /** The TLS the notice travelled with ("TLSv1.3 TLS_AES_256_GCM_SHA384", "plaintext"); null when it never left. */
  tls: string | null;
  /** For a bounce: the RFC 3463 status and the remote reply, when there was one. */
  status?: string;
  diagnostic?: string;
}

/**
 * How outbound tells the portal what became of its notices (relay.ts wires it to the portal
 * service). Called once per notice recipient when its outcome is final, after the store recorded it.
 */
export interface NoticeObserver {
  noticeFinished(e: NoticeFinishedEvent): void;
}

export const noopNoticeObserver: NoticeObserver = { noticeFinished: () => undefined };

/** The final notice outcomes in a recorded job result (none for a message that is not a notice). */
export function finishedNotices(claimed: ClaimedJob, result: JobResult): NoticeFinishedEvent[] {
  const notice = claimed.message.params.notice;
  if (!notice) return [];
  const events: NoticeFinishedEvent[] = [];
  for (const r of result.recipients) {
    if (r.outcome !== 'delivered' && r.outcome !== 'bounced') continue;
    events.push({
      queueId: claimed.message.id,
      ...(notice.itemId ? { itemId: notice.itemId } : {}),
      kind: notice.kind,
      recipient: r.address,
      outcome: r.outcome,
      reason: r.evidence.reason,
      tls: describeTls(r.evidence.tls),
      ...(r.outcome === 'bounced' ? bounceFacts(r.evidence) : {}),
    });
  }
  return events;
}

function describeTls(tls: unknown): string | null {
  if (!tls || typeof tls !== 'object') return null;
  const { protocol, cipher } = tls as { protocol?: string | null; cipher?: string | null };
  if (!protocol) return null;
  return cipher ? `${protocol} ${cipher}` : protocol;
}

/** The status and reply of a bounce, as the evidence recorded them (status set by the outcome rule). */
function bounceFacts(evidence: { status?: unknown; reply?: string | null }): { status?: string; diagnostic?: string } {
  return {
    ...(typeof evidence.status === 'string' ? { status: evidence.status } : {}),
    ...(evidence.reply ? { diagnostic: evidence.reply } : {}),
  };
}
