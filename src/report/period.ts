import { parsePeriodBound, periodBoundProblem } from '../evidence/dates';
import { REPORT_FORMATS, type ReportFormat, type ReportRequest } from './types';

/*
 * The report request as the CLI and the admin API take it: dates as text, checked the same way by both, so
 * `sealgate report` and GET /reports answer the same period for the same words.
 */

/** A request that cannot be a report: a bad date, an empty period, an unknown format. */
export class ReportRequestError extends Error {
  override name = 'ReportRequestError';
  constructor(
    message: string,
    /** The option or query field at fault. */
    readonly field: string,
  ) {
    super(message);
  }
}

/**
 * A report date: YYYY-MM-DD is a UTC day (its start for `from`; for `to`, the end of that day, so the day is
 * included), or a full ISO 8601 time with its zone (Z or ±hh:mm), taken as it is. Epoch ms.
 */
export function parseReportDate(text: string, edge: 'from' | 'to'): number {
  const ms = parsePeriodBound(text, edge);
  if (ms !== undefined) return ms;
  throw new ReportRequestError(`${edge} "${text}" ${periodBoundProblem(text)}`, edge);
}

const DOMAIN = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/;

/** The request from its text parts; throws ReportRequestError naming the field at fault. */
export function parseReportRequest(input: { from: string; to: string; domain?: string; sender?: string }): ReportRequest {
  const from = parseReportDate(input.from, 'from');
  const to = parseReportDate(input.to, 'to');
  if (from >= to) throw new ReportRequestError(`the period is empty: from ${new Date(from).toISOString()} is not before to ${new Date(to).toISOString()}`, 'to');
  const request: ReportRequest = { from, to };
  if (input.domain !== undefined) {
    const domain = input.domain.trim().replace(/\.$/, '').toLowerCase();
    if (!DOMAIN.test(domain) || domain.length > 253) throw new ReportRequestError(`domain "${input.domain}" is not a domain name (use A-labels for international names)`, 'domain');
    request.domain = domain;
  }
  if (input.sender !== undefined) {
    const sender = input.sender
      .trim()
      .replace(/^<(.*)>$/, '$1')
      .toLowerCase();
    if (sender.length > 320 || /[\s<>]/.test(sender) || (sender !== '' && !sender.includes('@'))) {
      throw new ReportRequestError(`sender "${input.sender}" is not an envelope sender (an address, or "" or "<>" for the null sender)`, 'sender');
    }
    request.sender = sender;
  }
  return request;
}

export function parseReportFormat(text: string | undefined): ReportFormat {
  const format = (text ?? 'json').trim().toLowerCase();
  if (!(REPORT_FORMATS as readonly string[]).includes(format)) throw new ReportRequestError(`format "${text ?? ''}" is not one of ${REPORT_FORMATS.join(', ')}`, 'format');
  return format as ReportFormat;
}
