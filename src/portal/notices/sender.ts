import { Readable } from 'node:stream';
import type { Config } from '../../config/schema';
import type { Logger } from '../../log/logger';
import type { JobQueue } from '../../store/roles';
import { composeNotice, type Notice } from './compose';
import { loadDkimSigner } from './dkim';
import { buildNoticeMime, noticeMessageId } from './mime';

export interface NoticeSender {
  /** Queues the notice durably as a new message from config.portal.noticeFrom (DKIM-signed when configured) for delivery with opportunistic TLS; returns its queue id. */
  send(notice: Notice): Promise<string>;
}

/** The envelope and From address of notices: portal.noticeFrom, else portal@<hostname>. */
export function noticeFromAddress(config: Config): string {
  return config.portal.noticeFrom ?? `portal@${config.hostname}`;
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
      let raw = await buildNoticeMime(composed, { from, to: notice.to, date, messageId });
      if (signer) raw = await signer.sign(raw);
      const itemId = 'itemId' in notice ? notice.itemId : undefined;
      const record = await store.enqueue(
        {
          from,
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
