import type { Config } from '../../config/schema';

/**
 * What the portal tells people by email. A notice never carries message content: no original
 * subject (unless the admin sets portal.includeOriginalSubject), no sender display name, no body,
 * no attachment names. The recipient's own address and the portal link are all a recipient notice
 * names; the sender notices name queue ids, Message-IDs and recipient addresses.
 */
export type Notice =
  | { kind: 'portal-link'; itemId: string; to: string; link: string; expiresAt: number; originalSubject?: string }
  | { kind: 'otp-code'; itemId: string; to: string; code: string; validForMs: number }
  | { kind: 'otp-locked'; itemId: string; to: string; until: number }
  | { kind: 'expiry-reminder'; itemId: string; to: string; link: string; expiresAt: number }
  | {
      kind: 'recipient-not-told';
      itemId: string;
      to: string /* the original sender */;
      recipient: string;
      queueId: string;
      reason: string;
      messageId?: string;
      /** Sent as an RFC 3464 DSN from the null sender: the original message's arrival time and ENVID. */
      arrivalAt?: number;
      envid?: string;
      /** From the notice's bounce, when known: the enhanced status code and the remote reply (never content). */
      status?: string;
      diagnostic?: string;
    }
  | { kind: 'unread-at-expiry'; to: string /* the original sender */; recipients: string[]; queueId: string; messageId?: string };

export type NoticeKind = Notice['kind'];

export const NOTICE_KINDS: readonly NoticeKind[] = ['portal-link', 'otp-code', 'otp-locked', 'expiry-reminder', 'recipient-not-told', 'unread-at-expiry'];

export interface ComposedNotice {
  subject: string;
  text: string;
  html: string;
}

const NEVER_PASSWORD = 'We never ask for your password, by email or on the portal.';

/** A paragraph: text lines for the plain part, escaped HTML for the HTML part. */
interface Block {
  text: string;
  html: string;
}

/** Pure: the notice's subject, plain text and simple accessible HTML. */
export function composeNotice(notice: Notice, config: Config, now: number = Date.now()): ComposedNotice {
  const org = config.portal.organisation;
  const base = oneLine(config.portal.noticeSubject.replaceAll('{org}', org));
  switch (notice.kind) {
    case 'portal-link': {
      const host = hostToCheck(config, notice.link);
      const original = config.portal.includeOriginalSubject && notice.originalSubject ? oneLine(notice.originalSubject) : '';
      return render(config, original ? `${base}: ${original}` : base, `${org} sent you a secure message`, [
        para(`${org} has sent you a message that could not be delivered to your mailbox securely. You can read it on ${org}'s secure portal until ${formatDate(notice.expiresAt)}.`),
        link(notice.link, 'Open your secure message'),
        para(`Check before you sign in: the link goes to ${host}. You will be asked to confirm who you are (as ${notice.to}) before the message is shown.`),
        para(NEVER_PASSWORD),
      ]);
    }
    case 'expiry-reminder': {
      const host = hostToCheck(config, notice.link);
      return render(config, `Reminder: ${base}`, `A secure message from ${org} is waiting for you`, [
        para(`You have not opened the secure message ${org} sent you yet. It will be deleted on ${formatDate(notice.expiresAt)}.`),
        link(notice.link, 'Open your secure message'),
        para(`Check before you sign in: the link goes to ${host}.`),
        para(NEVER_PASSWORD),
      ]);
    }
    case 'otp-code':
      return render(config, `${base}: your sign-in code`, 'Your sign-in code', [
        para(`Your code is ${notice.code}`),
        para(`It is valid for ${formatDuration(notice.validForMs)} and works once. If you did not ask for a code, you can ignore this email.`),
        para(`Enter it only on ${hostToCheck(config, null)}. ${NEVER_PASSWORD}`),
      ]);
    case 'otp-locked':
      return render(config, `${base}: sign-in paused`, 'Sign-in paused', [
        para(`There were too many wrong codes for the secure message ${org} sent to ${notice.to}. You can try again after ${formatDate(notice.until)}.`),
        para(`If this was not you, nothing has been opened. ${NEVER_PASSWORD}`),
      ]);
    case 'recipient-not-told':
      return render(config, `${base}: a recipient could not be told`, 'A recipient could not be told about a secure message', [
        para(`The portal notice for ${notice.recipient} could not be delivered (${notice.reason}), so they do not know a secure message is waiting for them. Please contact them another way.`),
        para(messageLine(notice.queueId, notice.messageId)),
        para(`Checked at ${formatDate(now)}.`),
      ]);
    case 'unread-at-expiry':
      return render(config, `${base}: not read before expiry`, 'A secure message expired unread', [
        para(`These recipients did not open the secure message before it expired, and it has been deleted: ${notice.recipients.join(', ')}. Please contact them another way.`),
        para(messageLine(notice.queueId, notice.messageId)),
      ]);
  }
}

function messageLine(queueId: string, messageId: string | undefined): string {
  return `Queue id: ${queueId}${messageId ? `. Message-ID: ${messageId}` : ''}.`;
}

function para(text: string): Block {
  return { text, html: `<p style="margin:0 0 16px 0">${escapeHtml(text)}</p>` };
}

function link(href: string, label: string): Block {
  return {
    text: `${label}:\n${href}`,
    html: `<p style="margin:0 0 16px 0"><a href="${escapeHtml(href)}" style="color:#0b57d0;font-weight:bold;text-decoration:underline">${escapeHtml(label)}</a></p>`,
  };
}

function render(config: Config, subject: string, heading: string, blocks: Block[]): ComposedNotice {
  const org = config.portal.organisation;
  const footer = `This is an automatic message from ${org}.`;
  const text = [heading, '', ...blocks.map((b) => b.text).flatMap((t) => [t, '']), footer, ''].join('\n');
  const html = [
    '<!DOCTYPE html>',
    '<html lang="en">',
    `<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(subject)}</title></head>`,
    '<body style="margin:0;padding:16px;font-family:Arial,Helvetica,sans-serif;font-size:16px;line-height:1.5;color:#1f1f1f;background:#ffffff">',
    '<main style="max-width:600px">',
    `<h1 style="font-size:22px;margin:0 0 16px 0">${escapeHtml(heading)}</h1>`,
    ...blocks.map((b) => b.html),
    `<p style="margin:24px 0 0 0;font-size:14px;color:#444444">${escapeHtml(footer)}</p>`,
    '</main>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
  return { subject, text, html };
}

/** The host name the recipient should see in the address bar: the public URL's, else the link's. */
function hostToCheck(config: Config, link: string | null): string {
  const url = config.portal.publicUrl ?? link ?? `https://${config.portal.host}:${config.portal.port}`;
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

function oneLine(value: string): string {
  return value.replace(/[\r\n\t]+/g, ' ').trim();
}

const DATE_FORMAT = new Intl.DateTimeFormat('en-GB', { dateStyle: 'long', timeStyle: 'short', timeZone: 'UTC' });

function formatDate(ms: number): string {
  return `${DATE_FORMAT.format(new Date(ms))} UTC`;
}

function formatDuration(ms: number): string {
  const minutes = Math.max(1, Math.round(ms / 60_000));
  if (minutes % 60 === 0) return minutes === 60 ? '1 hour' : `${minutes / 60} hours`;
  return minutes === 1 ? '1 minute' : `${minutes} minutes`;
}

function escapeHtml(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}
