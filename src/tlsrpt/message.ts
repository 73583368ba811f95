import { randomBytes } from 'node:crypto';
import MimeNode from 'nodemailer/lib/mime-node';

/** What a report mail says about its report (RFC 8460 §5.3). */
export interface ReportMailInput {
  /** The policy domain the report is about (TLS-Report-Domain). */
  policyDomain: string;
  /** The reporting domain (TLS-Report-Submitter). */
  submitter: string;
  /** The report's report-id. */
  reportId: string;
  /** Envelope sender and From. */
  from: string;
  /** The mailto: rua address. */
  to: string;
  date: Date;
  messageId: string;
  /** The gzipped report and its file name (`…json.gz`). */
  gzip: Buffer;
  fileName: string;
  /** The day covered, for the human-readable part (YYYY-MM-DD). */
  day: string;
}

/** A fresh Message-ID in the sender's domain. */
export function reportMessageId(from: string): string {
  const domain = from.includes('@') ? from.slice(from.lastIndexOf('@') + 1) : 'localhost';
  return `<tlsrpt.${randomBytes(12).toString('hex')}@${domain}>`;
}

/** RFC 8460 §5.3: `Report Domain: <d> Submitter: <s> Report-ID: <<id>>`. */
export function reportSubject(policyDomain: string, submitter: string, reportId: string): string {
  return `Report Domain: ${policyDomain} Submitter: ${submitter} Report-ID: <${reportId}>`;
}

/**
 * The report mail as RFC 5322 bytes: `multipart/report; report-type="tlsrpt"` with a short text part and the
 * gzipped report as `application/tlsrpt+gzip` (base64, named by its file name), the RFC's subject,
 * `TLS-Report-Domain`, `TLS-Report-Submitter`, and `TLS-Required: No` (RFC 8689 §5: a report about TLS
 * trouble must still arrive when TLS to the reporting address is what is broken).
 */
export function buildReportMail(input: ReportMailInput): Promise<Buffer> {
  const hostname = input.from.includes('@') ? input.from.slice(input.from.lastIndexOf('@') + 1) : input.submitter;
  const root = new MimeNode('multipart/report; report-type="tlsrpt"', { hostname });
  root.setHeader({
    From: input.from,
    To: input.to,
    Subject: reportSubject(input.policyDomain, input.submitter, input.reportId),
    Date: input.date,
    'TLS-Report-Domain': input.policyDomain,
    'TLS-Report-Submitter': input.submitter,
    'TLS-Required': 'No',
    'Auto-Submitted': 'auto-generated',
  });
  root.setHeader('Message-ID', input.messageId);
  const text = [
    `This is an aggregate TLS report (RFC 8460) from ${input.submitter}`,
    `about mail sent to ${input.policyDomain} on ${input.day} (UTC).`,
    '',
    `The report is attached as ${input.fileName}.`,
    '',
  ].join('\r\n');
  root.createChild('text/plain; charset=utf-8').setContent(text);
  const report = root.createChild('application/tlsrpt+gzip', { filename: input.fileName });
  report.setHeader('Content-Disposition', 'attachment');
  report.setHeader('Content-Transfer-Encoding', 'base64');
  report.setContent(input.gzip);
  return root.build();
}
