import { createHash } from 'node:crypto';
import type { DomainReport, OutcomeCounts, ReportData, TimelinePoint } from '../../src/report/types';

/*
 * Report data for the renderer's tests: a realistic week (several domains, TLS 1.3 and 1.2, diversions with reasons,
 * bounces, deferrals, MTA-STS / DANE / default sources, certificate problems, portal pickups, admin actions, a sealed
 * chain, posture rows), an empty period, a period whose chain is broken, and one full of hostile strings.
 * Totals, the timeline, TLS versions and top diverted domains are derived from the domain rows, so they agree.
 */

const FROM = Date.parse('2026-11-02T00:00:00.000Z');
const DAY = 86_400_000;
const DAYS = 7;

function hash(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export const SAMPLE_DOMAINS: DomainReport[] = [
  {
    domain: 'partner.example',
    messages: 40,
    delivered: 42,
    diverted: 0,
    bounced: 0,
    deferred: 3,
    deliveredByTls: [
      { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', count: 30 },
      { protocol: 'TLSv1.3', cipher: 'TLS_AES_128_GCM_SHA256', count: 12 },
    ],
    divertedByReason: {},
    policySources: { 'mta-sts-enforce': 45 },
    certificateProblems: {},
  },
  {
    domain: 'clinic.example',
    messages: 23,
    delivered: 20,
    diverted: 5,
    bounced: 0,
    deferred: 0,
    deliveredByTls: [{ protocol: 'TLSv1.2', cipher: 'ECDHE-RSA-AES256-GCM-SHA384', count: 20 }],
    divertedByReason: { 'tls-profile': 3, 'certificate-name-mismatch': 2 },
    policySources: { default: 20, 'mta-sts-testing': 5 },
    certificateProblems: { 'certificate-name-mismatch': 2 },
  },
  {
    domain: 'legacy.example',
    messages: 9,
    delivered: 0,
    diverted: 9,
    bounced: 1,
    deferred: 0,
    deliveredByTls: [],
    divertedByReason: { 'starttls-not-offered': 9 },
    policySources: { default: 10 },
    certificateProblems: {},
  },
  {
    domain: 'lab.example',
    messages: 8,
    delivered: 7,
    diverted: 2,
    bounced: 0,
    deferred: 0,
    deliveredByTls: [{ protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', count: 7 }],
    divertedByReason: { 'dane-no-match': 2 },
    policySources: { dane: 9 },
    certificateProblems: { 'dane-no-match': 2, 'certificate-untrusted': 1 },
  },
  {
    domain: 'oldfax.example',
    messages: 4,
    delivered: 0,
    diverted: 0,
    bounced: 2,
    deferred: 6,
    deliveredByTls: [],
    divertedByReason: {},
    policySources: { 'domain-rule': 8 },
    certificateProblems: {},
  },
];

function sum(domains: DomainReport[], key: keyof OutcomeCounts | 'messages'): number {
  return domains.reduce((total, domain) => total + domain[key], 0);
}

/** Spreads each outcome's total over the days, front-loaded, so the buckets add up to the totals. */
function timeline(totals: OutcomeCounts, days: number): TimelinePoint[] {
  const share = (total: number, day: number): number => Math.floor(total / days) + (day < total % days ? 1 : 0);
  return Array.from({ length: days }, (_, day) => ({
    start: new Date(FROM + day * DAY).toISOString(),
    delivered: share(totals.delivered, day),
    diverted: share(totals.diverted, day),
    bounced: share(totals.bounced, day),
    deferred: share(totals.deferred, day),
  }));
}

function anchors(recordsPerDay: number[]): ReportData['chain']['anchors'] {
  let lastSeq = 0;
  return recordsPerDay.map((records, day) => {
    lastSeq += records;
    const date = new Date(FROM + day * DAY).toISOString().slice(0, 10);
    return { day: date, count: records, lastSeq, lastHash: hash(`record ${lastSeq}`), hash: hash(`anchor ${date}`) };
  });
}

/** Builds a coherent report from domain rows: totals, timeline, TLS versions and top diverted follow from them. */
export function reportFrom(domains: DomainReport[], overrides: Partial<ReportData> = {}): ReportData {
  const totals = {
    messages: sum(domains, 'messages'),
    recipients: sum(domains, 'delivered') + sum(domains, 'diverted') + sum(domains, 'bounced'),
    delivered: sum(domains, 'delivered'),
    diverted: sum(domains, 'diverted'),
    bounced: sum(domains, 'bounced'),
    deferred: sum(domains, 'deferred'),
  };
  const tlsVersions: Record<string, number> = {};
  for (const tls of domains.flatMap((domain) => domain.deliveredByTls)) tlsVersions[tls.protocol] = (tlsVersions[tls.protocol] ?? 0) + tls.count;
  const topDiverted = domains
    .filter((domain) => domain.diverted > 0)
    .map((domain) => ({ domain: domain.domain, count: domain.diverted }))
    .sort((a, b) => b.count - a.count)
    .slice(0, 10);
  const outcomes = totals.delivered + totals.diverted + totals.bounced + totals.deferred;
  const perDay = Array.from({ length: DAYS }, (_, day) => Math.floor(outcomes / DAYS) + (day < outcomes % DAYS ? 1 : 0) + 2);
  return {
    version: 1,
    generatedAt: '2026-11-09T06:00:12.000Z',
    relay: 'relay.hospital.example',
    period: { from: new Date(FROM).toISOString(), to: new Date(FROM + DAYS * DAY).toISOString() },
    filters: { domain: null, sender: null },
    totals,
    timeline: timeline(totals, DAYS),
    tlsVersions,
    topDiverted,
    domains,
    portal: { stored: 16, notified: 16, opened: 13, read: 11, expiredUnread: 2, closedByAdmin: 1 },
    adminActions: {
      total: 4,
      byAction: { 'queue.delete': 2, 'queue.retry': 1, 'portal.withdraw': 1 },
      rows: [
        { at: '2026-11-03T09:14:02.000Z', actor: 'token:ops-alice', action: 'queue.delete', id: 'Q3F9A1' },
        { at: '2026-11-03T09:15:40.000Z', actor: 'token:ops-alice', action: 'queue.delete', id: 'Q3F9A2' },
        { at: '2026-11-05T16:02:11.000Z', actor: 'cli:root', action: 'queue.retry', id: 'Q77B20' },
        { at: '2026-11-06T11:30:00.000Z', actor: 'token:privacy-officer', action: 'portal.withdraw', id: 'P9K2M4' },
      ],
    },
    chain: { ok: true, records: perDay.reduce((a, b) => a + b, 0), firstBroken: null, anchors: anchors(perDay) },
    posture: [
      {
        domain: 'partner.example',
        recipients: 45,
        verdict: 'deliver',
        reason: 'mx1.partner.example offers TLSv1.3 with a trusted certificate',
        policy: 'mta-sts-enforce',
        mx: [
          { host: 'mx1.partner.example', protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', compliant: true },
          { host: 'mx2.partner.example', protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', compliant: true },
        ],
        negotiated: [
          { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', count: 30 },
          { protocol: 'TLSv1.3', cipher: 'TLS_AES_128_GCM_SHA256', count: 12 },
        ],
      },
      {
        domain: 'clinic.example',
        recipients: 25,
        verdict: 'deliver',
        reason: 'mail.clinic.example offers TLSv1.2 with an approved suite',
        policy: 'default',
        mx: [{ host: 'mail.clinic.example', protocol: 'TLSv1.2', cipher: 'ECDHE-RSA-AES256-GCM-SHA384', compliant: true }],
        negotiated: [{ protocol: 'TLSv1.2', cipher: 'ECDHE-RSA-AES256-GCM-SHA384', count: 20 }],
      },
      {
        domain: 'legacy.example',
        recipients: 10,
        verdict: 'divert',
        reason: 'starttls-not-offered',
        policy: 'default',
        mx: [{ host: 'smtp.legacy.example', protocol: null, cipher: null, compliant: false }],
        negotiated: [],
      },
      {
        domain: 'oldfax.example',
        recipients: 8,
        verdict: null,
        reason: 'DNS lookup for oldfax.example timed out',
        policy: null,
        mx: [],
        negotiated: [],
      },
    ],
    ...overrides,
  };
}

/** A week of mail to five partners, every part of the report filled in. */
export function sampleReport(): ReportData {
  return reportFrom(SAMPLE_DOMAINS.map((domain) => structuredClone(domain)));
}

/** A period with no mail at all: no outcomes, no portal events, no admin actions, posture not asked for. */
export function emptyReport(): ReportData {
  const report = reportFrom([], { portal: null, posture: null, adminActions: { total: 0, byAction: {}, rows: [] } });
  report.chain = { ok: true, records: 0, firstBroken: null, anchors: [] };
  return report;
}

/** The sample week whose evidence log was edited: verify names the first broken entry. */
export function brokenChainReport(): ReportData {
  const report = sampleReport();
  report.chain = {
    ...report.chain,
    ok: false,
    firstBroken: { day: '2026-11-04', line: 17, seq: 61, reason: 'hash does not match the record' },
  };
  return report;
}

/** Strings an attacker controls (recipient domains, remote replies, admin names) carrying markup. */
export const HOSTILE = '<script>alert("owned")</script><img src=x onerror=alert(1)>';

export function hostileReport(): ReportData {
  const domain = `${HOSTILE}.example`;
  const report = reportFrom([
    {
      domain,
      messages: 1,
      delivered: 1,
      diverted: 1,
      bounced: 0,
      deferred: 0,
      deliveredByTls: [{ protocol: 'TLSv1.3', cipher: HOSTILE, count: 1 }],
      divertedByReason: { [HOSTILE]: 1 },
      policySources: { default: 2 },
      certificateProblems: { [HOSTILE]: 1 },
    },
  ]);
  report.relay = HOSTILE;
  report.filters = { domain, sender: HOSTILE };
  report.adminActions = { total: 1, byAction: { [HOSTILE]: 1 }, rows: [{ at: HOSTILE, actor: HOSTILE, action: HOSTILE, id: HOSTILE }] };
  report.chain = { ok: false, records: 3, firstBroken: { day: HOSTILE, line: 1, seq: 1, reason: HOSTILE }, anchors: [] };
  report.posture = [
    {
      domain,
      recipients: 2,
      verdict: HOSTILE,
      reason: HOSTILE,
      policy: HOSTILE,
      mx: [{ host: HOSTILE, protocol: HOSTILE, cipher: HOSTILE, compliant: false }],
      negotiated: [{ protocol: HOSTILE, cipher: HOSTILE, count: 1 }],
    },
  ];
  return report;
}
