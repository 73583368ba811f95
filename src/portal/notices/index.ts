/**
 * Portal notices: composing them (no message content), signing them (src/mail/dkim.ts), and queueing them as ordinary queue
 * messages marked `params.notice`, which outbound delivers with opportunistic TLS.
 */
export { composeNotice, NOTICE_KINDS, type ComposedNotice, type Notice, type NoticeKind } from './compose';
export { buildNoticeDsn, buildNoticeMime, noticeMessageId, type NoticeDsnReport, type NoticeEnvelope } from './mime';
export { createNoticeSender, noticeFromAddress, type NoticeSender } from './sender';
