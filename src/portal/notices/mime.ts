import { randomBytes } from 'node:crypto';
import MailComposer from 'nodemailer/lib/mail-composer';
import MimeNode from 'nodemailer/lib/mime-node';
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

/** The delivery-status facts of a 'recipient-not-told' DSN (RFC 3464); never message content. */
export interface NoticeDsnReport {
  /** This relay's host name (Reporting-MTA: dns; <hostname>). */
  reportingMta: string;
  /** The original message's queue id (X-Sealgate-Queue-ID). */
  queueId: string;
  /** The original message's arrival time. */
  arrivalAt?: number;
  /** The original envelope id (RFC 3461 ENVID), when the sender gave one. */
  envid?: string;
  /** The recipient who could not be told. */
  recipient: string;
  /** RFC 3463 enhanced status; 5.0.0 when the bounce carried none. */
  status?: string;
  /** The remote reply (Diagnostic-Code: smtp; ...), when known. */
  diagnostic?: string;
  /** Our reason code, used as an X-Sealgate diagnostic when there is no remote reply. */
  reason: string;
  lastAttemptAt: number;
}

const ENHANCED_STATUS = /^[245]\.\d{1,3}\.\d{1,3}$/;

/**
 * A sender notice as an RFC 3464 delivery status notification: multipart/report; report-type=delivery-status
 * with the human-readable notice (text and HTML) and a message/delivery-status part, and no third part: the
 * original message is portal content, so neither it nor its headers travel back. The caller sends it from
 * the null sender `<>`.
 */
export async function buildNoticeDsn(composed: ComposedNotice, envelope: NoticeEnvelope, report: NoticeDsnReport): Promise<Buffer> {
  const root = new MimeNode('multipart/report; report-type=delivery-status', { hostname: report.reportingMta });
  root.setHeader({
    From: envelope.from,
    To: envelope.to,
    Subject: composed.subject,
    Date: envelope.date,
    'Auto-Submitted': 'auto-replied',
  });
  root.setHeader('Message-ID', envelope.messageId);
  const human = root.createChild('multipart/alternative');
  human.createChild('text/plain; charset=utf-8').setContent(composed.text);
  human.createChild('text/html; charset=utf-8').setContent(composed.html);
  root.createChild('message/delivery-status').setContent(deliveryStatus(report));
  return root.build();
}

function field(value: string): string {
  return value.replace(/[\r\n]+/g, ' ').trim();
}

function deliveryStatus(report: NoticeDsnReport): string {
  const perMessage = [`Reporting-MTA: dns; ${field(report.reportingMta)}`, `X-Sealgate-Queue-ID: ${field(report.queueId)}`];
  if (report.envid) perMessage.push(`Original-Envelope-Id: ${field(report.envid)}`);
  if (report.arrivalAt !== undefined) perMessage.push(`Arrival-Date: ${new Date(report.arrivalAt).toUTCString()}`);
  const status = report.status && ENHANCED_STATUS.test(report.status) && report.status.startsWith('5') ? report.status : '5.0.0';
  const perRecipient = [`Final-Recipient: rfc822; ${field(report.recipient)}`, 'Action: failed', `Status: ${status}`];
  perRecipient.push(report.diagnostic ? `Diagnostic-Code: smtp; ${field(report.diagnostic)}` : `Diagnostic-Code: X-Sealgate; ${field(report.reason)}`);
  perRecipient.push(`Last-Attempt-Date: ${new Date(report.lastAttemptAt).toUTCString()}`);
  return `${perMessage.join('\r\n')}\r\n\r\n${perRecipient.join('\r\n')}\r\n`;
}
