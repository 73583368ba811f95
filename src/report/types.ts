import type { EvidenceAnchor } from '../store/types';

/*
 * The compliance report's data: built from the evidence log for a period (report/build.ts), then rendered as JSON,
 * CSV, HTML or PDF. Counts, addresses, domains, TLS facts and reasons only: never message content.
 * Counting rule: every 'recipient-outcome' record in the period counts once under its outcome (a recipient
 * deferred twice then delivered counts 2 deferrals and 1 delivery); `messages` counts distinct queue ids.
 */

export type ReportFormat = 'json' | 'csv' | 'html' | 'pdf';
export const REPORT_FORMATS: readonly ReportFormat[] = ['json', 'csv', 'html', 'pdf'];

/** What to report on: records whose `at` is in [from, to). */
export interface ReportRequest {
  from: number;
  to: number;
  /** Only recipients in this domain (lower-cased). */
  domain?: string;
  /** Only messages from this envelope sender (lower-cased; '' is the null sender). */
  sender?: string;
}

export interface OutcomeCounts {
  delivered: number;
  diverted: number;
  bounced: number;
  deferred: number;
}

/** Deliveries by what the session negotiated. */
export interface TlsCount {
  protocol: string;
  cipher: string;
  count: number;
}

/** What set a recipient's requirements, as recorded: mta-sts-enforce, mta-sts-testing, dane, domain-rule, default. */
export type PolicySourceName = 'mta-sts-enforce' | 'mta-sts-testing' | 'dane' | 'domain-rule' | 'default';

export interface DomainReport extends OutcomeCounts {
  domain: string;
  /** Distinct messages with a recipient in this domain. */
  messages: number;
  deliveredByTls: TlsCount[];
  /** Diversions by reason code (tls-profile, starttls-not-offered, dane-no-match, ...). */
  divertedByReason: Record<string, number>;
  /** Outcomes by the policy source of the attempt. */
  policySources: Partial<Record<PolicySourceName, number>>;
  /** Certificate problems seen at any MX attempt (untrusted, name mismatch, expired, DANE failures), by code. */
  certificateProblems: Record<string, number>;
}

/** One bucket of the outcomes-over-time chart (a UTC day, or an hour for periods of two days or less). */
export interface TimelinePoint extends OutcomeCounts {
  /** ISO time of the bucket's start. */
  start: string;
}

/** The portal's side of diverted mail (null in the report when no portal event is in the period). */
export interface PortalPickups {
  /** Copies stored in the portal. */
  stored: number;
  /** Notices sent. */
  notified: number;
  /** Items whose link was opened. */
  opened: number;
  /** Items read (viewed or downloaded). */
  read: number;
  /** Items that expired unread. */
  expiredUnread: number;
  /** Items withdrawn, released or otherwise closed by an admin. */
  closedByAdmin: number;
}

export interface AdminActionRow {
  at: string;
  actor: string;
  action: string;
  id: string;
}

/** The evidence chain over the report's days, from `sealgate evidence verify`. */
export interface ChainStatus {
  ok: boolean;
  records: number;
  /** The first break, as verify names it. */
  firstBroken: { day: string; line: number; seq: number; reason: string } | null;
  /** The anchors of the period's days: the auditor keeps these, an outside copy of the seals. */
  anchors: Pick<EvidenceAnchor, 'day' | 'count' | 'lastSeq' | 'lastHash' | 'hash'>[];
}

/** A frequent destination's TLS posture now (from `sealgate check`) beside what its deliveries negotiated. */
export interface PartnerPosture {
  domain: string;
  /** Recipients of the period in this domain. */
  recipients: number;
  /** The check's verdict now: deliver, divert, defer or bounce; null when the check itself failed. */
  verdict: string | null;
  /** The check's reason (or the error that stopped it). */
  reason: string;
  /** mta-sts enforce/testing, dane, domain-rule or default. */
  policy: string | null;
  /** Each MX now: host, TLS negotiated, compliant. */
  mx: { host: string; protocol: string | null; cipher: string | null; compliant: boolean }[];
  /** What deliveries in the period negotiated. */
  negotiated: TlsCount[];
}

export interface ReportData {
  /** Report format version for scripts. */
  version: 1;
  generatedAt: string;
  /** The relay's hostname. */
  relay: string;
  period: { from: string; to: string };
  filters: { domain: string | null; sender: string | null };
  totals: OutcomeCounts & { messages: number; recipients: number };
  timeline: TimelinePoint[];
  /** Deliveries by protocol (TLSv1.3, TLSv1.2). */
  tlsVersions: Record<string, number>;
  /** Domains with the most diversions, most first (at most 10). */
  topDiverted: { domain: string; count: number }[];
  domains: DomainReport[];
  portal: PortalPickups | null;
  adminActions: { total: number; byAction: Record<string, number>; rows: AdminActionRow[] };
  chain: ChainStatus;
  /** Null when not asked for (no posture checks were run). */
  posture: PartnerPosture[] | null;
}
