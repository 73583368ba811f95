import MimeNode from 'nodemailer/lib/mime-node';

/** One failed (or delayed) recipient in a delivery status notification. */
export interface DsnRecipient {
  address: string;
  /** RFC 3461 ORCPT value as given by the client (e.g. "rfc822;a@b"). */
  orcpt?: string;
  action: 'failed' | 'delayed';
  /** RFC 3463 enhanced status, e.g. "5.1.1", "5.1.10". */
  status: string;
  remoteMta?: string | null;
  /** The remote reply or our own reason; never message content. */
  diagnostic: string;
  lastAttemptAt: number;
}

export interface DsnInput {
  reportingMta: string;
  /** The original envelope sender: the DSN's only recipient. Never called for the null sender. */
  originalSender: string;
  queueId: string;
  arrivalAt: number;
  envid?: string;
  recipients: DsnRecipient[];
  /** The original message's header section only (RFC 3462 text/rfc822-headers); the body is never returned. */
  originalHeaders: Buffer;
  now?: number;
}

/**
 * Builds an RFC 3464 multipart/report DSN. The third part carries the original headers only:
 * regulated mail must not travel back in a bounce.
 */
export async function buildDsn(input: DsnInput): Promise<Buffer> {
  if (input.originalSender === '') throw new Error('a DSN is never sent to the null sender');
  const now = new Date(input.now ?? Date.now());
  const root = new MimeNode('multipart/report; report-type=delivery-status', { hostname: input.reportingMta, newline: 'win' });
  const failed = input.recipients.some((r) => r.action === 'failed');
  root.setHeader({
    From: `Mail Delivery System <MAILER-DAEMON@${input.reportingMta}>`,
    To: input.originalSender,
    Subject: failed ? 'Undelivered Mail Returned to Sender' : 'Delayed Mail (still being retried)',
    Date: now,
    'Auto-Submitted': 'auto-replied',
  });
  root.setHeader('Message-ID', `<dsn.${input.queueId}.${now.getTime()}@${input.reportingMta}>`);

  root.createChild('text/plain; charset=utf-8').setContent(humanText(input));
  root.createChild('message/delivery-status').setContent(deliveryStatus(input));
  root.createChild('text/rfc822-headers').setContent(input.originalHeaders);
  return root.build();
}

function humanText(input: DsnInput): string {
  const lines = [
    `This is the mail system at ${input.reportingMta}.`,
    '',
    `Your message (queue id ${input.queueId}) could not be delivered to the following recipient(s).`,
    'The message text is not attached; the original headers are, for your records.',
    '',
  ];
  for (const r of input.recipients) {
    lines.push(`<${r.address}>: ${r.action === 'failed' ? 'failed' : 'delayed'}, ${r.status}`);
    lines.push(`    ${r.diagnostic}${r.remoteMta ? ` (from ${r.remoteMta})` : ''}`);
  }
  return `${lines.join('\r\n')}\r\n`;
}

function deliveryStatus(input: DsnInput): string {
  const perMessage = [`Reporting-MTA: dns; ${input.reportingMta}`, `X-Sealgate-Queue-ID: ${input.queueId}`];
  if (input.envid) perMessage.push(`Original-Envelope-Id: ${input.envid}`);
  perMessage.push(`Arrival-Date: ${new Date(input.arrivalAt).toUTCString()}`);
  const blocks = [perMessage.join('\r\n')];
  for (const r of input.recipients) {
    const fields = [`Final-Recipient: rfc822; ${r.address}`];
    if (r.orcpt) fields.push(`Original-Recipient: ${r.orcpt.includes(';') ? r.orcpt.replace(/;\s*/, '; ') : `rfc822; ${r.orcpt}`}`);
    fields.push(`Action: ${r.action}`, `Status: ${r.status}`);
    if (r.remoteMta) fields.push(`Remote-MTA: dns; ${r.remoteMta}`);
    fields.push(`Diagnostic-Code: smtp; ${r.diagnostic.replace(/[\r\n]+/g, ' ')}`);
    fields.push(`Last-Attempt-Date: ${new Date(r.lastAttemptAt).toUTCString()}`);
    blocks.push(fields.join('\r\n'));
  }
  return `${blocks.join('\r\n\r\n')}\r\n`;
}
