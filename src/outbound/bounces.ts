import { Readable } from 'node:stream';
import type { Logger } from '../log/logger';
import type { ClaimedJob, RecipientRecord, RecipientResult, Store } from '../store/types';
import { buildDsn, messageIdTag, type DsnAction, type DsnRecipient } from './dsn';
import { advertisesDsn, deferralStatus, delayWarningDue, dsnSuppressedFor, relayedNoticeDue, successStatus, wantsDelayNotice, wantsFailureNotice, wantsSuccessNotice } from './notify';

const MAX_HEADER_BYTES = 256 * 1024;

/** Reads a stored message's header section only (up to the blank line), never the body. */
export async function readHeaderSection(store: Store, queueId: string, limit = MAX_HEADER_BYTES): Promise<Buffer> {
  const stream = await store.openBody(queueId);
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of stream) {
      chunks.push(chunk as Buffer);
      length += (chunk as Buffer).length;
      const soFar = Buffer.concat(chunks);
      const end = soFar.indexOf('\r\n\r\n');
      if (end >= 0) return soFar.subarray(0, end + 4);
      if (length >= limit) return Buffer.concat([soFar.subarray(0, limit), Buffer.from('\r\n')]);
    }
  } finally {
    stream.destroy();
  }
  return Buffer.concat(chunks);
}

export { wantsFailureNotice } from './notify';

/** A recipient to report, with the stored facts its DSN needs (NOTIFY decides, ORCPT is carried into the report). */
export type DsnCandidate = DsnRecipient & { record: Pick<RecipientRecord, 'notify' | 'orcpt'> };

const KIND_OF: Record<DsnAction, { wants: (r: Pick<RecipientRecord, 'notify'>) => boolean; event: string; logLine: string }> = {
  failed: { wants: wantsFailureNotice, event: 'dsn-queued', logLine: 'failure DSN queued to the sender' },
  delayed: { wants: wantsDelayNotice, event: 'dsn-delay-queued', logLine: 'delay warning DSN queued to the sender' },
  relayed: { wants: wantsSuccessNotice, event: 'dsn-relayed-queued', logLine: 'relayed (success) DSN queued to the sender' },
};

/**
 * Queues a failure DSN to the envelope sender as a new message, so it travels under Sealgate's own
 * rules (TLS policy, portal fallback). Returns the DSN's queue id, or undefined when none is due
 * (null sender, NOTIFY said no). `dsnId`: see queueDsn.
 */
export function queueFailureDsn(store: Store, hostname: string, claimed: ClaimedJob, failed: DsnCandidate[], logger: Logger, dsnId?: string): Promise<string | undefined> {
  return queueDsn(store, hostname, claimed, 'failed', failed, logger, dsnId);
}

/**
 * Queues one DSN of one kind (every recipient in `candidates` must carry that action) to the envelope sender,
 * as a new message from <> with the original headers only, like the failure DSN. Recipients whose NOTIFY does not
 * ask for this kind are left out; returns undefined when none is left, or the message gets no DSN at all.
 * `dsnId` (a newMessageId() chosen once by a caller that retries this) is the DSN's queue id: a retry after a
 * write that landed but whose reply was lost finds that DSN instead of queueing a second one.
 */
export async function queueDsn(store: Store, hostname: string, claimed: ClaimedJob, action: DsnAction, candidates: DsnCandidate[], logger: Logger, dsnId?: string): Promise<string | undefined> {
  const { message } = claimed;
  const suppressed = dsnSuppressedFor(message);
  if (suppressed === 'portal-notice') {
    // A portal notice comes from the portal's own address: the portal service tells the sender instead.
    logger.info({ event: 'dsn-suppressed', queueId: message.id, reason: 'portal-notice' }, 'no DSN for a portal notice');
    return undefined;
  }
  if (suppressed === 'relay-mail') {
    // The relay's own mail to its staff (a scheduled report): nobody reads the sender's mailbox, so the failure is
    // an error in the log (the recipient's outcome, with its evidence, is recorded as for any message).
    if (action === 'failed') {
      const kind = message.params.compliantOnly?.kind ?? 'relay-mail';
      for (const c of candidates) {
        logger.error(
          { event: 'relay-mail-bounced', queueId: message.id, kind, recipient: c.address, status: c.status, reply: c.diagnostic },
          'the relay could not deliver its own mail over compliant TLS; it was not diverted',
        );
      }
    }
    return undefined;
  }
  if (suppressed === 'null-sender') {
    logger.info({ event: 'dsn-suppressed', queueId: message.id, reason: 'null-sender' }, 'no DSN for a message from the null sender');
    return undefined;
  }
  const kind = KIND_OF[action];
  const recipients = candidates.filter((c) => c.action === action && kind.wants(c.record)).map(({ record, ...r }) => ({ ...r, ...(record.orcpt ? { orcpt: record.orcpt } : {}) }));
  if (recipients.length === 0) return undefined;
  const originalHeaders = await readHeaderSection(store, message.id);
  const dsn = await buildDsn({
    reportingMta: hostname,
    originalSender: message.from,
    queueId: message.id,
    arrivalAt: message.receivedAt,
    ...(message.params.dsn?.envid ? { envid: message.params.dsn.envid } : {}),
    recipients,
    originalHeaders,
  });
  const now = Date.now();
  const record = await store.enqueue(
    {
      from: '',
      recipients: [{ address: message.from }],
      params: {},
      client: { ip: '127.0.0.1', listener: 'dsn', hostname },
      receivedAt: now,
    },
    Readable.from([dsn]),
    { messageId: `<${messageIdTag(recipients)}.${message.id}.${now}@${hostname}>`, from: `MAILER-DAEMON@${hostname}`, date: new Date(now).toISOString() },
    dsnId !== undefined ? { id: dsnId } : undefined,
  );
  logger.info({ event: kind.event, queueId: message.id, dsnQueueId: record.id, recipients: recipients.length }, kind.logLine);
  return record.id;
}

/** What the DSN builders read of an outcome decision (see src/outcome Decision) and of the session it was reached on. */
export interface DecidedFacts {
  reason: string;
  detail?: string;
  reply: string | null;
  session?: { target: { host: string }; ehlo: readonly string[] } | undefined;
}

/**
 * The recipients this attempt left deferred that are owed their delay warning now (see delayWarningDue), as
 * `delayed` DSN entries: the last reason, a 4.x.x status, and Will-Retry-Until = arrival + maxQueueTime.
 */
export function delayedCandidates(
  claimed: ClaimedJob,
  pending: RecipientRecord[],
  results: RecipientResult[],
  decisions: ReadonlyMap<string, DecidedFacts>,
  delivery: { delayWarning: number | null; maxQueueTime: number },
  now: number,
): DsnCandidate[] {
  const { message } = claimed;
  const out: DsnCandidate[] = [];
  for (const result of results) {
    if (result.outcome !== 'deferred') continue;
    const record = pending.find((p) => p.address === result.address);
    if (!record || !delayWarningDue(message, record, delivery.delayWarning, now)) continue;
    const decision = decisions.get(result.address);
    const diagnostic = decision ? (decision.reply ?? decision.detail ?? decision.reason) : result.evidence.reason;
    out.push({
      address: result.address,
      action: 'delayed',
      status: deferralStatus(decision?.reply),
      remoteMta: decision?.session?.target.host ?? null,
      diagnostic,
      lastAttemptAt: result.evidence.at,
      willRetryUntil: message.receivedAt + delivery.maxQueueTime,
      record,
    });
  }
  return out;
}

/**
 * The delivered recipients that asked for NOTIFY=SUCCESS and are owed a `relayed` DSN by Sealgate: the next hop
 * either did not advertise DSN or was not handed their NOTIFY (`notifyPassedOn`: the transaction carried one
 * NOTIFY for all its recipients, so it is only passed on when they all gave the same). Diverted recipients get
 * none: the portal holds the message and tells the sender itself when configured to.
 */
export function relayedCandidates(pending: RecipientRecord[], results: RecipientResult[], decisions: ReadonlyMap<string, DecidedFacts>, notifyPassedOn: boolean): DsnCandidate[] {
  const out: DsnCandidate[] = [];
  for (const result of results) {
    if (result.outcome !== 'delivered') continue;
    const record = pending.find((p) => p.address === result.address);
    const decision = decisions.get(result.address);
    if (!record || !decision) continue;
    if (!relayedNoticeDue(record, advertisesDsn(decision.session?.ehlo ?? []), notifyPassedOn)) continue;
    out.push({
      address: result.address,
      action: 'relayed',
      status: successStatus(decision.reply),
      remoteMta: decision.session?.target.host ?? null,
      diagnostic: decision.reply ?? decision.reason,
      lastAttemptAt: result.evidence.at,
      record,
    });
  }
  return out;
}
