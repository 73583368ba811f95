/**
 * Portal notices: composing them (no message content), DKIM, and queueing them as ordinary queue
 * messages marked `params.notice`, which outbound delivers with opportunistic TLS.
 */
export { composeNotice, NOTICE_KINDS, type ComposedNotice, type Notice, type NoticeKind } from './compose';
export { DkimKeyError, loadDkimSigner, type DkimSigner } from './dkim';
export { buildNoticeDsn, buildNoticeMime, noticeMessageId, type NoticeDsnReport, type NoticeEnvelope } from './mime';
export { createNoticeSender, noticeFromAddress, type NoticeSender } from './sender';
