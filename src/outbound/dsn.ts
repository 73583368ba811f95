import MimeNode from 'nodemailer/lib/mime-node';

/**
 * RFC 3464 actions Sealgate reports: `failed` (bounced), `delayed` (still deferred after delivery.delayWarning),
 * `relayed` (NOTIFY=SUCCESS, handed on to a next hop that will not report).
 */
export type DsnAction = 'failed' | 'delayed' | 'relayed';

/** One recipient in a delivery status notification. */
export interface DsnRecipient {
  address: string;
  /** RFC 3461 ORCPT value as given by the client (e.g. "rfc822;a@b"). */
  orcpt?: string;
  action: DsnAction;
  /** RFC 3463 enhanced status, e.g. "5.1.1", "5.1.10", "4.4.1", "2.0.0". */
  status: string;
  remoteMta?: string | null;
  /** The remote reply or our own reason; never message content. */
  diagnostic: string;
  lastAttemptAt: number;
  /** Delayed recipients: when Sealgate stops retrying (RFC 3464 Will-Retry-Until). */
  willRetryUntil?: number;
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
  root.setHeader({
    From: `Mail Delivery System <MAILER-DAEMON@${input.reportingMta}>`,
    To: input.originalSender,
    Subject: subjectOf(input.recipients),
    Date: now,
    'Auto-Submitted': 'auto-replied',
  });
  root.setHeader('Message-ID', `<${messageIdTag(input.recipients)}.${input.queueId}.${now.getTime()}@${input.reportingMta}>`);

  root.createChild('text/plain; charset=utf-8').setContent(humanText(input));
  root.createChild('message/delivery-status').setContent(deliveryStatus(input));
  root.createChild('text/rfc822-headers').setContent(input.originalHeaders);
  return root.build();
}

/** `dsn` for a bounce (as always), `dsn-delayed` / `dsn-relayed` for the others, so two reports of one attempt never share an id. */
export function messageIdTag(recipients: DsnRecipient[]): string {
  if (recipients.length === 0 || recipients.some((r) => r.action === 'failed')) return 'dsn';
  return recipients.some((r) => r.action === 'delayed') ? 'dsn-delayed' : 'dsn-relayed';
}

/** A failure anywhere makes it a bounce; otherwise the report says what it is. */
function subjectOf(recipients: DsnRecipient[]): string {
  if (recipients.some((r) => r.action === 'failed')) return 'Undelivered Mail Returned to Sender';
  if (recipients.some((r) => r.action === 'delayed')) return 'Delayed Mail (still being retried)';
  return 'Successful Mail Delivery Report';
}

function humanText(input: DsnInput): string {
  const lines = [`This is the mail system at ${input.reportingMta}.`, ''];
  if (input.recipients.some((r) => r.action === 'failed')) {
    lines.push(`Your message (queue id ${input.queueId}) could not be delivered to the following recipient(s).`);
  } else if (input.recipients.some((r) => r.action === 'delayed')) {
    const until = Math.max(...input.recipients.map((r) => r.willRetryUntil ?? 0));
    lines.push(
      'THIS IS A WARNING ONLY. YOU DO NOT NEED TO RESEND YOUR MESSAGE.',
      '',
      `Your message (queue id ${input.queueId}) could not be delivered yet to the following recipient(s).`,
      until > 0 ? `Delivery will be retried until ${new Date(until).toUTCString()}.` : 'Delivery is still being retried.',
    );
  } else {
    lines.push(
      `Your message (queue id ${input.queueId}) was handed on to the next mail system for the following recipient(s).`,
      'That system does not send delivery reports, so this is the last report you will receive from here.',
    );
  }
  lines.push('The message text is not attached; the original headers are, for your records.', '');
  for (const r of input.recipients) {
    lines.push(`<${r.address}>: ${r.action}, ${r.status}`);
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
    if (r.action === 'delayed' && r.willRetryUntil !== undefined) fields.push(`Will-Retry-Until: ${new Date(r.willRetryUntil).toUTCString()}`);
    blocks.push(fields.join('\r\n'));
  }
  return `${blocks.join('\r\n\r\n')}\r\n`;
}
