import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import MailComposer from 'nodemailer/lib/mail-composer';
import type { Config } from '../config/schema';
import type { DkimSigner } from '../mail/dkim';
import type { JobQueue } from '../store/roles';
import type { GeneratedReport } from './schedule';
import type { ReportFormat } from './types';

/** Envelope sender and From of report mail: reports.from, else reports@<hostname>. */
export function reportMailFrom(config: Pick<Config, 'hostname' | 'reports'>): string {
  return config.reports.from ?? `reports@${config.hostname}`;
}

const CONTENT_TYPES: Record<ReportFormat, string> = {
  json: 'application/json',
  csv: 'text/csv; charset=utf-8',
  html: 'text/html; charset=utf-8',
  pdf: 'application/pdf',
};

/** An address with its domain lower-cased, as the queue keeps recipients. */
function normalise(address: string): string {
  const at = address.lastIndexOf('@');
  return `${address.slice(0, at)}@${address.slice(at + 1).toLowerCase()}`;
}

export interface ReportMailInput {
  from: string;
  to: readonly string[];
  /** The relay's hostname, named in the subject and text. */
  relay: string;
  date: Date;
  messageId: string;
  report: GeneratedReport;
}

/**
 * The report mail as RFC 5322 bytes (nodemailer's MailComposer): a short text part naming the period and each
 * file's SHA-256 (the same fingerprints the evidence log holds), and every file attached. No `TLS-Required: No`:
 * this mail travels over compliant TLS or not at all.
 */
export async function buildReportMail(input: ReportMailInput): Promise<Buffer> {
  const { period, schedule, files } = input.report;
  const span = period.firstDay === period.lastDay ? period.firstDay : `${period.firstDay} to ${period.lastDay}`;
  const text = [
    `The ${schedule} compliance report of ${input.relay} for ${span} (UTC) is attached.`,
    '',
    'Files and their SHA-256 (also recorded in the evidence log as a report-generated record):',
    ...files.map((f) => `  ${f.name}  ${f.size} bytes  ${f.sha256}`),
    '',
    'Check the evidence chain with `sealgate evidence verify`.',
    '',
  ].join('\r\n');
  const composer = new MailComposer({
    from: input.from,
    to: [...input.to],
    subject: `Sealgate compliance report ${span} (${input.relay})`,
    date: input.date,
    messageId: input.messageId,
    headers: { 'Auto-Submitted': 'auto-generated' },
    text,
    attachments: files.map((f) => ({ filename: f.name, content: f.content, contentType: CONTENT_TYPES[f.format] })),
  });
  return composer.compile().build();
}

export interface ReportMailerDeps {
  config: Pick<Config, 'hostname' | 'reports'>;
  store: Pick<JobQueue, 'enqueue'>;
  /** reports.dkim's signer; null: unsigned. */
  signer: DkimSigner | null;
  now?: () => number;
}

/**
 * Queues one message per report to reports.mailTo, marked compliant-only (params.compliantOnly kind 'report'):
 * the delivery engine sends it over a NIST-compliant session or defers it, and bounces it at expiry; it is never
 * diverted to the portal and never sent opportunistically. Returns the queue id.
 */
export function createReportMailer(deps: ReportMailerDeps): (report: GeneratedReport) => Promise<string> {
  const now = deps.now ?? Date.now;
  return async (report) => {
    const { config } = deps;
    const from = reportMailFrom(config);
    const to = config.reports.mailTo.map(normalise);
    const date = new Date(now());
    const domain = from.slice(from.lastIndexOf('@') + 1) || config.hostname;
    const messageId = `<report.${randomBytes(12).toString('hex')}@${domain}>`;
    let raw = await buildReportMail({ from, to, relay: config.hostname, date, messageId, report });
    if (deps.signer) raw = await deps.signer.sign(raw);
    const record = await deps.store.enqueue(
      {
        from,
        recipients: [...new Set(to)].map((address) => ({ address })),
        params: { compliantOnly: { kind: 'report' } },
        client: { ip: '127.0.0.1', listener: 'reports', hostname: config.hostname },
        receivedAt: date.getTime(),
      },
      Readable.from([raw]),
      { messageId, from, date: date.toISOString() },
    );
    return record.id;
  };
}
