import { Readable } from 'node:stream';
import type { Logger } from '../log/logger';
import type { ClaimedJob, RecipientRecord, Store } from '../store/types';
import { buildDsn, type DsnRecipient } from './dsn';

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

/** RFC 3461: a failure DSN goes out unless the client asked for NOTIFY=NEVER or a list without FAILURE. */
export function wantsFailureNotice(recipient: Pick<RecipientRecord, 'notify'>): boolean {
  if (!recipient.notify || recipient.notify.length === 0) return true;
  const notify = recipient.notify.map((n) => n.toUpperCase());
  return !notify.includes('NEVER') && notify.includes('FAILURE');
}

/**
 * Queues a failure DSN to the envelope sender as a new message, so it travels under Sealgate's own
 * rules (TLS policy, portal fallback). Returns the DSN's queue id, or undefined when none is due
 * (null sender, NOTIFY said no).
 */
export async function queueFailureDsn(
  store: Store,
  hostname: string,
  claimed: ClaimedJob,
  failed: Array<DsnRecipient & { record: Pick<RecipientRecord, 'notify' | 'orcpt'> }>,
  logger: Logger,
): Promise<string | undefined> {
  const { message } = claimed;
  if (message.params.notice) {
    // A portal notice comes from the portal's own address: the portal service tells the sender instead.
    logger.info({ event: 'dsn-suppressed', queueId: message.id, reason: 'portal-notice' }, 'no DSN for a portal notice');
    return undefined;
  }
  if (message.from === '') {
    logger.info({ event: 'dsn-suppressed', queueId: message.id, reason: 'null-sender' }, 'no DSN for a message from the null sender');
    return undefined;
  }
  const recipients = failed.filter((f) => wantsFailureNotice(f.record)).map(({ record, ...r }) => ({ ...r, ...(record.orcpt ? { orcpt: record.orcpt } : {}) }));
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
    { messageId: `<dsn.${message.id}.${now}@${hostname}>`, from: `MAILER-DAEMON@${hostname}`, date: new Date(now).toISOString() },
  );
  logger.info({ event: 'dsn-queued', queueId: message.id, dsnQueueId: record.id, recipients: recipients.length }, 'failure DSN queued to the sender');
  return record.id;
}
