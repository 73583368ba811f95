import { randomBytes } from 'node:crypto';
import MailComposer from 'nodemailer/lib/mail-composer';
import type { ComposedNotice } from './compose';

export interface NoticeEnvelope {
  from: string;
  to: string;
  date: Date;
  messageId: string;
}

/** A fresh Message-ID in the notice sender's domain. */
export function noticeMessageId(from: string, kind: string): string {
  const domain = from.includes('@') ? from.slice(from.lastIndexOf('@') + 1) : 'localhost';
  return `<notice.${kind}.${randomBytes(12).toString('hex')}@${domain}>`;
}

/**
 * The notice as RFC 5322 bytes: multipart/alternative (text, then HTML), From/To/Date/Message-ID,
 * `Auto-Submitted: auto-generated` (RFC 3834, so auto-responders stay quiet) and no List-* headers.
 */
export async function buildNoticeMime(composed: ComposedNotice, envelope: NoticeEnvelope): Promise<Buffer> {
  const composer = new MailComposer({
    from: envelope.from,
    to: envelope.to,
    subject: composed.subject,
    date: envelope.date,
    messageId: envelope.messageId,
    text: composed.text,
    html: composed.html,
    headers: { 'Auto-Submitted': 'auto-generated' },
    disableUrlAccess: true,
    disableFileAccess: true,
  });
  return composer.compile().build();
}
