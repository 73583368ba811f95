import type { OutcomeCounts, PolicySourceName, TlsCount } from './types';

/*
 * How the HTML report words and formats the data: numbers, UTC times, labels for codes. No markup here.
 */

export const OUTCOMES: readonly (keyof OutcomeCounts)[] = ['delivered', 'diverted', 'bounced', 'deferred'];

export const OUTCOME_LABELS: Record<keyof OutcomeCounts, string> = {
  delivered: 'Delivered over TLS',
  diverted: 'Diverted to the secure portal',
  bounced: 'Bounced',
  deferred: 'Deferred (retried)',
};

/** One colour per outcome, the same in every chart; dark enough to print. */
export const OUTCOME_COLOURS: Record<keyof OutcomeCounts, string> = {
  delivered: '#1b7a3a',
  diverted: '#1f5aa6',
  bounced: '#b3261e',
  deferred: '#a86400',
};

const POLICY_LABELS: Record<PolicySourceName, string> = {
  'mta-sts-enforce': 'MTA-STS enforce',
  'mta-sts-testing': 'MTA-STS testing',
  dane: 'DANE',
  'domain-rule': 'Domain rule',
  default: 'Default profile',
};

/** A count with thousands separators, independent of the machine's locale. */
export function count(value: number): string {
  return String(value).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** A share as a whole percentage ('–' when there is nothing to share). */
export function percent(part: number, whole: number): string {
  if (whole <= 0) return '–';
  const share = (part / whole) * 100;
  return share > 0 && share < 1 ? '<1%' : `${Math.round(share)}%`;
}

/** An ISO time as 'YYYY-MM-DD HH:MM UTC' (the text as given when it is not a time). */
export function utc(iso: string): string {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return iso;
  return `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** The UTC days a period [from, to) covers, first and last, as `sealgate evidence verify` takes them. */
export function periodDays(period: { from: string; to: string }): { first: string; last: string } {
  const from = Date.parse(period.from);
  const to = Date.parse(period.to);
  if (Number.isNaN(from) || Number.isNaN(to)) return { first: period.from.slice(0, 10), last: period.to.slice(0, 10) };
  const first = new Date(from).toISOString().slice(0, 10);
  const last = new Date(Math.max(from, to - 1)).toISOString().slice(0, 10);
  return { first, last };
}

export function policyLabel(source: string): string {
  return POLICY_LABELS[source as PolicySourceName] ?? source;
}

/** 'TLSv1.3 TLS_AES_256_GCM_SHA384' for a negotiated session. */
export function tlsLabel(tls: Pick<TlsCount, 'protocol' | 'cipher'>): string {
  return tls.cipher ? `${tls.protocol} ${tls.cipher}` : tls.protocol;
}

/** A record's entries, largest count first, then by name, for stable tables. */
export function byCount(record: Record<string, number | undefined>): [string, number][] {
  return Object.entries(record)
    .filter((entry): entry is [string, number] => typeof entry[1] === 'number' && entry[1] > 0)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

/** TLS 1.2 and newer: what NIST SP 800-52r2 and the relay's profile accept. */
export function isModernTls(protocol: string): boolean {
  return protocol === 'TLSv1.2' || protocol === 'TLSv1.3';
}
