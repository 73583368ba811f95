import { Readable } from 'node:stream';
import type { Config } from '../../config/schema';
import type { Logger } from '../../log/logger';
import type { JobQueue } from '../../store/roles';
import { composeNotice, type Notice } from './compose';
import { loadDkimSigner } from '../../mail/dkim';
import { buildNoticeDsn, buildNoticeMime, noticeMessageId, type NoticeDsnReport } from './mime';

export interface NoticeSender {
  /** Queues the notice durably as a new message from config.portal.noticeFrom (a 'recipient-not-told' DSN: from the null sender `<>`, From: header noticeFrom) (DKIM-signed when configured) for delivery with opportunistic TLS; returns its queue id. */
  send(notice: Notice): Promise<string>;
}

/** The envelope and From address of notices: portal.noticeFrom, else portal@<hostname>. */
export function noticeFromAddress(config: Config): string {
  return config.portal.noticeFrom ?? `portal@${config.hostname}`;
}

function dsnReport(notice: Extract<Notice, { kind: 'recipient-not-told' }>, hostname: string, at: number): NoticeDsnReport {
  return {
    reportingMta: hostname,
    queueId: notice.queueId,
    recipient: notice.recipient,
    reason: notice.reason,
    lastAttemptAt: at,
    ...(notice.arrivalAt !== undefined ? { arrivalAt: notice.arrivalAt } : {}),
    ...(notice.envid ? { envid: notice.envid } : {}),
    ...(notice.status ? { status: notice.status } : {}),
    ...(notice.diagnostic ? { diagnostic: notice.diagnostic } : {}),
  };
}

/**
 * Builds the notice sender. The DKIM key (portal.dkim) is read here, once: an unreadable key
 * throws (DkimKeyError) so the relay fails at start, not at the first notice.
 */
export function createNoticeSender(deps: { config: Config; store: Pick<JobQueue, 'enqueue'>; logger: Logger; now?: () => number }): NoticeSender {
  const { config, store, logger } = deps;
  const now = deps.now ?? Date.now;
  const signer = loadDkimSigner(config.portal.dkim);
  const from = noticeFromAddress(config);
  return {
    async send(notice: Notice): Promise<string> {
      const at = now();
      const composed = composeNotice(notice, config, at);
      const messageId = noticeMessageId(from, notice.kind);
      const date = new Date(at);
      const envelope = { from, to: notice.to, date, messageId };
      // Telling the sender a recipient could not be told is a DSN (RFC 3464), so it comes from the null sender.
      const isDsn = notice.kind === 'recipient-not-told';
      let raw = isDsn ? await buildNoticeDsn(composed, envelope, dsnReport(notice, config.hostname, at)) : await buildNoticeMime(composed, envelope);
      if (signer) raw = await signer.sign(raw);
      const itemId = 'itemId' in notice ? notice.itemId : undefined;
      const record = await store.enqueue(
        {
          from: isDsn ? '' : from,
          recipients: [{ address: notice.to }],
          params: { notice: { ...(itemId ? { itemId } : {}), kind: notice.kind } },
          client: { ip: '127.0.0.1', listener: 'portal', hostname: config.hostname },
          receivedAt: at,
        },
        Readable.from([raw]),
        { messageId, from, date: date.toISOString() },
      );
      logger.info({ event: 'notice-queued', queueId: record.id, kind: notice.kind, itemId: itemId ?? null, signed: signer !== null }, 'portal notice queued');
      return record.id;
    },
  };
}
