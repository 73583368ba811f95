import type { DomainReport, OutcomeCounts, ReportData, TlsCount } from './types';

/*
 * The report as CSV: one row per recipient domain, then a TOTAL row, for a spreadsheet or a script. A cell that a
 * spreadsheet would run as a formula (starting with = + - @, a tab or a carriage return) gets a leading quote
 * mark: domains, reasons and codes come from outside (replies, DNS), and csv-stringify leaves them as they are.
 */

export const CSV_COLUMNS = [
  'domain',
  'messages',
  'delivered',
  'diverted',
  'bounced',
  'deferred',
  'delivered TLSv1.3',
  'delivered TLSv1.2',
  'diverted by reason',
  'policy sources',
  'certificate problems',
] as const;

/** The cell as a spreadsheet shows it, never as a formula. */
export function neutraliseFormula(cell: string): string {
  return /^[=+\-@\t\r]/.test(cell) ? `'${cell}` : cell;
}

/** "a=2; b=1": most first, then by name. */
function counts(map: Record<string, number | undefined>): string {
  return Object.entries(map)
    .filter((entry): entry is [string, number] => typeof entry[1] === 'number' && entry[1] > 0)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .map(([key, n]) => `${key}=${n}`)
    .join('; ');
}

function byProtocol(tls: readonly TlsCount[], protocol: string): number {
  return tls.reduce((sum, t) => sum + (t.protocol === protocol ? t.count : 0), 0);
}

function sum(maps: readonly Record<string, number | undefined>[]): Record<string, number> {
  const total: Record<string, number> = {};
  for (const map of maps) for (const [key, n] of Object.entries(map)) if (typeof n === 'number') total[key] = (total[key] ?? 0) + n;
  return total;
}

function row(
  domain: string,
  messages: number,
  outcomes: OutcomeCounts,
  tls: readonly TlsCount[],
  reasons: Record<string, number>,
  sources: Record<string, number | undefined>,
  problems: Record<string, number>,
): string[] {
  return [
    domain,
    String(messages),
    String(outcomes.delivered),
    String(outcomes.diverted),
    String(outcomes.bounced),
    String(outcomes.deferred),
    String(byProtocol(tls, 'TLSv1.3')),
    String(byProtocol(tls, 'TLSv1.2')),
    counts(reasons),
    counts(sources),
    counts(problems),
  ].map(neutraliseFormula);
}

/** The CSV text (header, one row per domain, TOTAL), RFC 4180 quoting, CRLF line ends. */
export function renderReportCsv(data: ReportData): string {
  const domains: DomainReport[] = data.domains;
  const rows = domains.map((d) => row(d.domain, d.messages, d, d.deliveredByTls, d.divertedByReason, d.policySources, d.certificateProblems));
  rows.push(
    row(
      'TOTAL',
      data.totals.messages,
      data.totals,
      domains.flatMap((d) => d.deliveredByTls),
      sum(domains.map((d) => d.divertedByReason)),
      sum(domains.map((d) => d.policySources)),
      sum(domains.map((d) => d.certificateProblems)),
    ),
  );
  // Loaded on demand: only a report needs it, and the relay imports this module at start.
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a lazy require keeps csv-stringify unloaded until a report is written
  const { stringify } = require('csv-stringify/sync') as typeof import('csv-stringify/sync');
  return stringify(rows, { header: true, columns: [...CSV_COLUMNS], record_delimiter: 'windows' });
}
