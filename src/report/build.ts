import type { AdminActionEntry } from '../evidence/audit-log';
import type { AuditEntry, MxAttemptEvidence } from '../evidence/delivery';
import { evidenceDay, recipientDomain, verifyEvidence } from '../store/evidence-chain';
import type { EvidenceKind, EvidenceLog, EvidenceRecord } from '../store/types';
import type { AdminActionRow, ChainStatus, DomainReport, OutcomeCounts, PartnerPosture, PolicySourceName, PortalPickups, ReportData, ReportRequest, TimelinePoint, TlsCount } from './types';

/*
 * The report's data from the evidence log: one pass over the period's records, oldest first, counted as the rule in
 * types.ts says. Only counters and small per-item flags are kept, never the records, so a long period costs one
 * read of its days and memory in proportion to its messages, domains and portal items.
 */

/** What buildReport reads: the period's records, and what the chain check reads. */
export type ReportLog = Pick<EvidenceLog, 'queryEvidence' | 'evidenceDays' | 'readEvidenceDay' | 'evidenceAnchors' | 'evidenceBase' | 'evidenceHead'>;

/** A domain handed to the partner-posture check: its recipients in the period and what its deliveries negotiated. */
export interface PostureDomain {
  domain: string;
  recipients: number;
  negotiated: TlsCount[];
}

export type PostureCheck = (domains: PostureDomain[]) => Promise<PartnerPosture[]>;

export interface BuildReportOptions {
  /** The relay's hostname, printed on the report. */
  relay: string;
  /** When the report is generated (epoch ms). */
  now: number;
  /** Checks the busiest domains' current TLS posture (`sealgate check`); none: no posture section (null). */
  posture?: PostureCheck;
  /** How many of the busiest domains (by recipients) go to the posture check (reports.postureDomains). */
  postureDomains?: number;
}

/** Admin-action rows kept in the report; the totals count every action. */
export const MAX_ADMIN_ROWS = 500;
/** Domains in the top-diverted chart. */
export const TOP_DIVERTED = 10;
/** Periods up to this long get an hourly timeline, longer ones a daily one. */
const HOURLY_UP_TO_MS = 2 * 86_400_000;
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

const KINDS: readonly EvidenceKind[] = ['recipient-outcome', 'admin-action', 'portal-event', 'evidence-pruned'];

/** Attempt codes that are certificate or DANE failures (smtp-client/judge.ts, policy/dane/match.ts, outcome/codes.ts). */
const CERTIFICATE_CODES = new Set(['certificate-untrusted', 'certificate-name-mismatch']);

/**
 * The certificate problem an MX attempt's code names, or null. An untrusted certificate that failed for its dates
 * is reported as certificate-expired (as TLS-RPT does), so an auditor sees expiry apart from a bad chain.
 */
export function certificateProblem(attempt: Pick<MxAttemptEvidence, 'code' | 'certificate'>): string | null {
  const code = attempt.code;
  if (code === 'certificate-untrusted' && attempt.certificate?.error === 'CERT_HAS_EXPIRED') return 'certificate-expired';
  if (CERTIFICATE_CODES.has(code) || code.startsWith('dane-')) return code;
  return null;
}

/** The policy source of a recorded outcome; null when the outcome recorded no policy (nothing was planned). */
export function policySource(policy: AuditEntry['policy'] | undefined): PolicySourceName | null {
  if (!policy) return null;
  // DANE alone decides for a host with usable TLSA records, over MTA-STS (smtp-client/judge.ts).
  if (policy.dane === 'secure-tlsa') return 'dane';
  if (policy.source === 'mta-sts') return policy.mode === 'testing' ? 'mta-sts-testing' : 'mta-sts-enforce';
  if (policy.source === 'domain-rule') return 'domain-rule';
  return 'default';
}

const OUTCOMES = ['delivered', 'diverted', 'bounced', 'deferred'] as const;
type Outcome = (typeof OUTCOMES)[number];

function isOutcome(value: unknown): value is Outcome {
  return typeof value === 'string' && (OUTCOMES as readonly string[]).includes(value);
}

function zero(): OutcomeCounts {
  return { delivered: 0, diverted: 0, bounced: 0, deferred: 0 };
}

function bump(map: Record<string, number | undefined>, key: string, by = 1): void {
  map[key] = (map[key] ?? 0) + by;
}

interface DomainTally {
  report: DomainReport;
  queueIds: Set<string>;
  recipients: Set<string>;
  tls: Map<string, TlsCount>;
}

/** Portal item flags, one bit each. */
const STORED = 1;
const NOTIFIED = 2;
const OPENED = 4;
const READ = 8;
const EXPIRED_UNREAD = 16;
const CLOSED_BY_ADMIN = 32;

/** Builds the report of `request` from the evidence log; see types.ts for what each part counts. */
export async function buildReport(log: ReportLog, request: ReportRequest, options: BuildReportOptions): Promise<ReportData> {
  const { from, to } = request;
  if (!(Number.isFinite(from) && Number.isFinite(to) && from < to)) throw new RangeError('the report period must have from before to');
  const domainFilter = request.domain === undefined ? undefined : request.domain.toLowerCase();
  const senderFilter = request.sender === undefined ? undefined : request.sender.toLowerCase();

  const totals = zero();
  const messages = new Set<string>();
  const recipients = new Set<string>();
  const domains = new Map<string, DomainTally>();
  const tlsVersions: Record<string, number> = {};
  const timeline = timelineBuckets(from, to);
  const portalItems = new Map<string, number>();
  let portalSeen = false;
  const adminRows: AdminActionRow[] = [];
  const adminByAction: Record<string, number> = {};
  let adminTotal = 0;

  const query = { from, to, kinds: KINDS, ...(domainFilter === undefined ? {} : { domain: domainFilter }), ...(senderFilter === undefined ? {} : { sender: senderFilter }) };
  for await (const record of log.queryEvidence(query)) {
    // The store narrows by the query; checked again here so a report never counts what it was not asked for.
    if (record.at < from || record.at >= to) continue;
    if (domainFilter !== undefined && (record.recipient === null || recipientDomain(record.recipient) !== domainFilter)) continue;
    if (senderFilter !== undefined && (record.sender === null || record.sender.toLowerCase() !== senderFilter)) continue;
    switch (record.kind) {
      case 'recipient-outcome': {
        const entry = record.data as Partial<AuditEntry>;
        const outcome = entry.outcome;
        if (!isOutcome(outcome)) break;
        const recipient = (record.recipient ?? entry.recipient ?? '').toLowerCase();
        const domain = recipientDomain(recipient);
        const queueId = record.queueId ?? entry.queueId ?? '';
        const tally = domainTally(domains, domain);
        totals[outcome]++;
        tally.report[outcome]++;
        messages.add(queueId);
        tally.queueIds.add(queueId);
        const key = `${queueId}\n${recipient}`;
        recipients.add(key);
        tally.recipients.add(key);
        bucketFor(timeline, from, to, record.at)[outcome]++;
        if (outcome === 'delivered') {
          const protocol = entry.tls?.protocol ?? 'none';
          const cipher = entry.tls?.cipher ?? 'none';
          bump(tlsVersions, protocol);
          const tlsKey = `${protocol}\n${cipher}`;
          const count = tally.tls.get(tlsKey) ?? { protocol, cipher, count: 0 };
          count.count++;
          tally.tls.set(tlsKey, count);
        }
        if (outcome === 'diverted') bump(tally.report.divertedByReason, typeof entry.reason === 'string' && entry.reason !== '' ? entry.reason : 'unknown');
        const source = policySource(entry.policy);
        if (source) bump(tally.report.policySources, source);
        for (const attempt of Array.isArray(entry.mxAttempts) ? entry.mxAttempts : []) {
          const problem = typeof attempt?.code === 'string' ? certificateProblem(attempt) : null;
          if (problem) bump(tally.report.certificateProblems, problem);
        }
        break;
      }
      case 'portal-event': {
        const itemId = typeof record.data.itemId === 'string' ? record.data.itemId : null;
        const type = typeof record.data.type === 'string' ? record.data.type : null;
        if (itemId === null || type === null) break;
        portalSeen = true;
        portalItems.set(itemId, portalFlags(portalItems.get(itemId) ?? 0, type));
        break;
      }
      case 'admin-action':
      case 'evidence-pruned': {
        const row = adminRow(record);
        adminTotal++;
        bump(adminByAction, row.action);
        if (adminRows.length < MAX_ADMIN_ROWS) adminRows.push(row);
        break;
      }
      default:
        break;
    }
  }

  const domainReports = [...domains.values()]
    .map((tally) => ({ ...tally.report, messages: tally.queueIds.size, deliveredByTls: sortedTls(tally.tls) }))
    .sort((a, b) => (a.domain < b.domain ? -1 : a.domain > b.domain ? 1 : 0));
  const topDiverted = domainReports
    .filter((d) => d.diverted > 0)
    .map((d) => ({ domain: d.domain, count: d.diverted }))
    .sort((a, b) => b.count - a.count || (a.domain < b.domain ? -1 : 1))
    .slice(0, TOP_DIVERTED);

  const chain = await chainStatus(log, from, to);
  const posture = options.posture ? await options.posture(postureDomains(domains, options.postureDomains ?? 10)) : null;

  return {
    version: 1,
    generatedAt: new Date(options.now).toISOString(),
    relay: options.relay,
    period: { from: new Date(from).toISOString(), to: new Date(to).toISOString() },
    filters: { domain: domainFilter ?? null, sender: senderFilter ?? null },
    totals: { ...totals, messages: messages.size, recipients: recipients.size },
    timeline,
    tlsVersions,
    topDiverted,
    domains: domainReports,
    portal: portalSeen ? portalPickups(portalItems) : null,
    adminActions: { total: adminTotal, byAction: adminByAction, rows: adminRows },
    chain,
    posture,
  };
}

function domainTally(domains: Map<string, DomainTally>, domain: string): DomainTally {
  let tally = domains.get(domain);
  if (!tally) {
    tally = {
      report: { domain, messages: 0, ...zero(), deliveredByTls: [], divertedByReason: {}, policySources: {}, certificateProblems: {} },
      queueIds: new Set(),
      recipients: new Set(),
      tls: new Map(),
    };
    domains.set(domain, tally);
  }
  return tally;
}

function sortedTls(counts: Map<string, TlsCount>): TlsCount[] {
  return [...counts.values()].sort((a, b) => b.count - a.count || (a.protocol + a.cipher < b.protocol + b.cipher ? -1 : 1));
}

/** Empty buckets covering [from, to): UTC hours for two days or less, UTC days otherwise. */
export function timelineBuckets(from: number, to: number): TimelinePoint[] {
  const step = to - from <= HOURLY_UP_TO_MS ? HOUR_MS : DAY_MS;
  const points: TimelinePoint[] = [];
  for (let start = Math.floor(from / step) * step; start < to; start += step) points.push({ start: new Date(start).toISOString(), ...zero() });
  return points;
}

function bucketFor(points: TimelinePoint[], from: number, to: number, at: number): TimelinePoint {
  const step = to - from <= HOURLY_UP_TO_MS ? HOUR_MS : DAY_MS;
  const index = Math.floor(at / step) - Math.floor(from / step);
  return points[Math.min(Math.max(index, 0), points.length - 1)]!;
}

/** Sets an item's flags for one of its trail's events (store/model.ts PortalEvent.type). */
function portalFlags(flags: number, type: string): number {
  if (type === 'portal.stored') return flags | STORED;
  if (type === 'notify.sent') return flags | NOTIFIED;
  if (type === 'link.opened') return flags | OPENED;
  if (type === 'message.viewed' || type === 'attachment.downloaded') return flags | READ;
  if (type === 'message.expired') return flags & READ ? flags : flags | EXPIRED_UNREAD;
  if (type.startsWith('admin.')) return flags | CLOSED_BY_ADMIN;
  return flags;
}

function portalPickups(items: Map<string, number>): PortalPickups {
  const pickups: PortalPickups = { stored: 0, notified: 0, opened: 0, read: 0, expiredUnread: 0, closedByAdmin: 0 };
  for (const flags of items.values()) {
    if (flags & STORED) pickups.stored++;
    if (flags & NOTIFIED) pickups.notified++;
    if (flags & OPENED) pickups.opened++;
    if (flags & READ) pickups.read++;
    if (flags & EXPIRED_UNREAD) pickups.expiredUnread++;
    if (flags & CLOSED_BY_ADMIN) pickups.closedByAdmin++;
  }
  return pickups;
}

function adminRow(record: EvidenceRecord): AdminActionRow {
  const at = new Date(record.at).toISOString();
  if (record.kind === 'evidence-pruned') {
    const days = Array.isArray(record.data.days) ? (record.data.days as unknown[]).filter((d): d is string => typeof d === 'string') : [];
    const id = days.length === 0 ? '' : days.length === 1 ? days[0]! : `${days[0]!}..${days[days.length - 1]!}`;
    return { at, actor: record.actor, action: 'evidence.prune', id };
  }
  const entry = record.data as Partial<AdminActionEntry>;
  return {
    at,
    actor: typeof entry.actor === 'string' ? entry.actor : record.actor,
    action: typeof entry.action === 'string' ? entry.action : 'unknown',
    id: typeof entry.id === 'string' ? entry.id : (record.queueId ?? ''),
  };
}

/** verify over the period's days (the days its records were logged in), and those days' anchors. */
async function chainStatus(log: ReportLog, from: number, to: number): Promise<ChainStatus> {
  const fromDay = evidenceDay(from);
  const toDay = evidenceDay(to - 1);
  const [verification, anchors] = await Promise.all([verifyEvidence(log, { fromDay, toDay }), log.evidenceAnchors()]);
  return {
    ok: verification.ok,
    records: verification.records,
    firstBroken: verification.firstBroken,
    anchors: anchors.filter((a) => a.day >= fromDay && a.day <= toDay).map(({ day, count, lastSeq, lastHash, hash }) => ({ day, count, lastSeq, lastHash, hash })),
  };
}

/** The `limit` domains with the most recipients (ties by name), with what their deliveries negotiated. */
function postureDomains(domains: Map<string, DomainTally>, limit: number): PostureDomain[] {
  return [...domains.values()]
    .filter((t) => t.report.domain !== '')
    .map((t) => ({ domain: t.report.domain, recipients: t.recipients.size, negotiated: sortedTls(t.tls) }))
    .sort((a, b) => b.recipients - a.recipients || (a.domain < b.domain ? -1 : 1))
    .slice(0, Math.max(0, limit));
}
