import { gzipSync } from 'node:zlib';
import { TLSRPT_DAY, type TlsRptCounters } from '../store/types';
import { parseDetailKey, parsePolicyKey } from './keys';
import type { FailureDetail, PolicyResult, TlsReport } from './types';

/** The UTC day (YYYY-MM-DD) a moment falls on: the counters' and reports' unit. */
export function utcDay(at: number): string {
  return new Date(at).toISOString().slice(0, 10);
}

/** The day `days` after (or before, negative) a day. */
export function addDays(day: string, days: number): string {
  return utcDay(dayRange(day).begin + days * 86_400_000);
}

/** Start (inclusive) and end (exclusive) of a UTC day, epoch ms. */
export function dayRange(day: string): { begin: number; end: number } {
  if (!TLSRPT_DAY.test(day)) throw new TypeError(`not a day (YYYY-MM-DD): ${day}`);
  const begin = Date.parse(`${day}T00:00:00Z`);
  if (Number.isNaN(begin) || utcDay(begin) !== day) throw new TypeError(`not a day (YYYY-MM-DD): ${day}`);
  return { begin, end: begin + 86_400_000 };
}

/** RFC 3339 in UTC without fractions (`2026-11-29T00:00:00Z`), as reports carry their date range. */
export function rfc3339(at: number): string {
  return new Date(at).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export interface BuildReportInput {
  counters: Pick<TlsRptCounters, 'tlsRptRead'>;
  /** The policy domain the report is about. */
  domain: string;
  /** The UTC day (YYYY-MM-DD) it covers. */
  day: string;
  organizationName: string;
  contactInfo: string;
  /** The reporting domain; only used to make the default report-id. */
  submitter: string;
  /** Unique per report; default `<day>_<domain>@<submitter>`. */
  reportId?: string;
}

/**
 * The RFC 8460 §4.4 report of one policy domain for one UTC day, from the store's counters: one `policies[]`
 * entry per policy the sessions were made under, with its successes, failures and failure details (sorted,
 * so the same counters always make the same report). A counter this module did not write is left out.
 */
export async function buildReport(input: BuildReportInput): Promise<TlsReport> {
  const { begin, end } = dayRange(input.day);
  const byPolicy = new Map<string, PolicyResult>();
  for (const tally of await input.counters.tlsRptRead(input.domain, input.day)) {
    const policy = parsePolicyKey(tally.policy);
    if (!policy) continue;
    let entry = byPolicy.get(tally.policy);
    if (!entry) {
      entry = {
        policy: { 'policy-type': policy.type, 'policy-string': policy.strings, 'policy-domain': input.domain, 'mx-host': policy.mxHost },
        summary: { 'total-successful-session-count': 0, 'total-failure-session-count': 0 },
        'failure-details': [],
      };
      byPolicy.set(tally.policy, entry);
    }
    if (tally.detail === null) {
      entry.summary['total-successful-session-count'] += tally.count;
      continue;
    }
    const detail = parseDetailKey(tally.detail);
    if (!detail) continue;
    entry.summary['total-failure-session-count'] += tally.count;
    const existing = entry['failure-details'].find((d) => sameDetail(d, detail));
    if (existing) existing['failed-session-count'] += tally.count;
    else entry['failure-details'].push({ ...detail, 'failed-session-count': tally.count });
  }
  const policies = [...byPolicy.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, entry]) => entry);
  for (const entry of policies) entry['failure-details'].sort((a, b) => compare(JSON.stringify(a), JSON.stringify(b)));
  return {
    'organization-name': input.organizationName,
    'date-range': { 'start-datetime': rfc3339(begin), 'end-datetime': rfc3339(end - 1000) },
    'contact-info': input.contactInfo,
    'report-id': input.reportId ?? `${input.day}_${input.domain}@${input.submitter}`,
    policies,
  };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sameDetail(a: FailureDetail, b: Omit<FailureDetail, 'failed-session-count'>): boolean {
  const { 'failed-session-count': _count, ...rest } = a;
  return JSON.stringify(Object.entries(rest).sort()) === JSON.stringify(Object.entries(b).sort());
}

/**
 * RFC 8460 §5.3 file name: `<submitter>!<policy-domain>!<begin-unix>!<end-unix>[!<unique-id>].json.gz`
 * (begin and end in seconds). The unique id may not contain `!` or `.`.
 */
export function reportFileName(submitter: string, domain: string, begin: number, end: number, uniqueId?: string, gzip = true): string {
  if (uniqueId !== undefined && !/^[A-Za-z0-9_-]+$/.test(uniqueId)) throw new TypeError(`report unique id must be letters, digits, _ or -: ${uniqueId}`);
  for (const name of [submitter, domain]) if (/[!/\\\s]/.test(name) || name === '') throw new TypeError(`not a domain for a report file name: ${name}`);
  const parts = [submitter, domain, String(Math.floor(begin / 1000)), String(Math.floor(end / 1000)), ...(uniqueId !== undefined ? [uniqueId] : [])];
  return `${parts.join('!')}.json${gzip ? '.gz' : ''}`;
}

/** The report as `application/tlsrpt+json` bytes (I-JSON: UTF-8, no duplicate names). */
export function reportJson(report: TlsReport): Buffer {
  return Buffer.from(JSON.stringify(report), 'utf8');
}

/** The report as `application/tlsrpt+gzip` bytes. */
export function gzipReport(report: TlsReport): Buffer {
  return gzipSync(reportJson(report));
}

export const MEDIA_TYPE_JSON = 'application/tlsrpt+json';
export const MEDIA_TYPE_GZIP = 'application/tlsrpt+gzip';
