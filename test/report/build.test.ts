import { buildReport, certificateProblem, policySource, timelineBuckets, type PostureDomain, type ReportLog } from '../../src/report/build';
import type { PartnerPosture } from '../../src/report/types';
import { adminAction, attempt, MemoryEvidenceLog, outcome, POLICY, portalEvent, TLS12, TLS13 } from './evidence-fixture';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const FROM = Date.parse('2026-11-02T00:00:00Z');
const TO = Date.parse('2026-11-05T00:00:00Z');
const OPTIONS = { relay: 'relay.clinic.test', now: Date.parse('2026-11-05T06:00:00Z') };

/**
 * Three days of evidence: partner.example delivered over TLS 1.3 (MTA-STS enforce) and, after two deferrals, over
 * TLS 1.2 (testing); legacy.example diverted twice (no STARTTLS; certificate problems under a domain rule); dane.example
 * delivered and diverted under DANE; gone.example bounced; another sender's delivery; one record just before the
 * period and one exactly at its end; portal items and admin actions.
 */
function world(): MemoryEvidenceLog {
  const log = new MemoryEvidenceLog();
  const d0 = FROM;
  const d1 = FROM + DAY;
  const d2 = FROM + 2 * DAY;
  log.append([outcome({ at: FROM - 1, queueId: 'q0', recipient: 'early@partner.example', outcome: 'delivered', tls: TLS13, policy: POLICY.enforce })], FROM - 1);
  log.append(
    [
      outcome({ at: d0, queueId: 'q1', recipient: 'a@partner.example', outcome: 'delivered', tls: TLS13, policy: POLICY.enforce, attempts: [attempt('compliant')] }),
      outcome({ at: d0 + HOUR, queueId: 'q1', recipient: 'B@Partner.example', outcome: 'deferred', reason: 'rcpt-451', policy: POLICY.testing }),
      outcome({ at: d0 + 2 * HOUR, queueId: 'q2', recipient: 'c@legacy.example', outcome: 'diverted', reason: 'starttls-not-offered', attempts: [attempt('starttls-not-offered')] }),
      portalEvent(d0 + 2 * HOUR, 'i1', 'portal.stored'),
      portalEvent(d0 + 2 * HOUR, 'i1', 'notify.sent'),
    ],
    d0 + 2 * HOUR,
  );
  log.append(
    [
      outcome({ at: d1, queueId: 'q1', recipient: 'b@partner.example', outcome: 'deferred', reason: 'rcpt-451', policy: POLICY.testing }),
      outcome({ at: d1 + HOUR, queueId: 'q1', recipient: 'b@partner.example', outcome: 'delivered', tls: TLS12, policy: POLICY.testing }),
      outcome({
        at: d1 + 2 * HOUR,
        queueId: 'q3',
        recipient: 'd@legacy.example',
        outcome: 'diverted',
        reason: 'no-compliant-mx',
        policy: POLICY.rule,
        attempts: [
          attempt('certificate-untrusted', { certificate: { subject: null, issuer: null, validFrom: null, validTo: null, trusted: false, nameMatch: true, error: 'CERT_HAS_EXPIRED' } }),
          attempt('certificate-name-mismatch'),
          attempt('certificate-untrusted', { certificate: { subject: null, issuer: null, validFrom: null, validTo: null, trusted: false, nameMatch: true, error: 'SELF_SIGNED_CERT_IN_CHAIN' } }),
        ],
      }),
      outcome({ at: d1 + 3 * HOUR, queueId: 'q4', recipient: 'e@dane.example', outcome: 'delivered', tls: TLS13, policy: POLICY.dane }),
      outcome({ at: d1 + 3 * HOUR, queueId: 'q4', recipient: 'e2@dane.example', outcome: 'diverted', reason: 'dane-no-match', policy: POLICY.dane, attempts: [attempt('dane-no-match')] }),
      outcome({ at: d1 + 4 * HOUR, queueId: 'q5', recipient: 'f@gone.example', outcome: 'bounced', reason: 'rcpt-550', policy: null }),
      outcome({ at: d1 + 5 * HOUR, queueId: 'q6', recipient: 'g@partner.example', sender: 'Other@Clinic.test', outcome: 'delivered', tls: TLS13, policy: POLICY.enforce }),
      portalEvent(d1, 'i1', 'link.opened'),
      portalEvent(d1, 'i1', 'message.viewed'),
      portalEvent(d1, 'i1', 'attachment.downloaded'),
      portalEvent(d1, 'i2', 'portal.stored', 'd@legacy.example'),
      portalEvent(d1, 'i3', 'portal.stored', 'e2@dane.example'),
      portalEvent(d1, 'i3', 'message.viewed', 'e2@dane.example'),
      adminAction(d1 + 6 * HOUR, 'queue.delete', 'q5'),
    ],
    d1 + 6 * HOUR,
  );
  log.append(
    [
      portalEvent(d2, 'i2', 'message.expired', 'd@legacy.example'),
      portalEvent(d2, 'i3', 'message.expired', 'e2@dane.example'),
      portalEvent(d2, 'i4', 'portal.stored', 'c@legacy.example'),
      portalEvent(d2, 'i4', 'admin.withdrawn', 'c@legacy.example'),
      adminAction(d2 + HOUR, 'fallback.release', 'f1', 'lead'),
      outcome({ at: TO - 1, queueId: 'q7', recipient: 'last@gone.example', outcome: 'bounced', reason: 'rcpt-550' }),
    ],
    d2 + HOUR,
  );
  // At `to`: the next period's.
  log.append([outcome({ at: TO, queueId: 'q8', recipient: 'late@partner.example', outcome: 'delivered', tls: TLS13, policy: POLICY.enforce })], TO);
  return log;
}

describe('buildReport', () => {
  it('counts every outcome once under its outcome, messages by queue id, recipients by queue id and address', async () => {
    const report = await buildReport(world(), { from: FROM, to: TO }, OPTIONS);
    // q1: a delivered, b deferred twice then delivered; q2, q3 diverted; q4 one delivered one diverted; q5, q7 bounced; q6 delivered.
    expect(report.totals).toEqual({ delivered: 4, diverted: 3, bounced: 2, deferred: 2, messages: 7, recipients: 9 });
    expect(report).toMatchObject({ version: 1, relay: 'relay.clinic.test', generatedAt: '2026-11-05T06:00:00.000Z', period: { from: '2026-11-02T00:00:00.000Z', to: '2026-11-05T00:00:00.000Z' } });
    expect(report.filters).toEqual({ domain: null, sender: null });
    expect(report.domains.map((d) => d.domain)).toEqual(['dane.example', 'gone.example', 'legacy.example', 'partner.example']);
  });

  it('splits deliveries by TLS, diversions by reason, outcomes by policy source, and names certificate problems per domain', async () => {
    const report = await buildReport(world(), { from: FROM, to: TO }, OPTIONS);
    const byName = new Map(report.domains.map((d) => [d.domain, d]));
    expect(byName.get('partner.example')).toEqual({
      domain: 'partner.example',
      messages: 2,
      delivered: 3,
      diverted: 0,
      bounced: 0,
      deferred: 2,
      deliveredByTls: [
        { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', count: 2 },
        { protocol: 'TLSv1.2', cipher: 'ECDHE-RSA-AES256-GCM-SHA384', count: 1 },
      ],
      divertedByReason: {},
      policySources: { 'mta-sts-enforce': 2, 'mta-sts-testing': 3 },
      certificateProblems: {},
    });
    expect(byName.get('legacy.example')).toMatchObject({
      messages: 2,
      diverted: 2,
      divertedByReason: { 'starttls-not-offered': 1, 'no-compliant-mx': 1 },
      policySources: { default: 1, 'domain-rule': 1 },
      certificateProblems: { 'certificate-expired': 1, 'certificate-untrusted': 1, 'certificate-name-mismatch': 1 },
    });
    expect(byName.get('dane.example')).toMatchObject({
      messages: 1,
      delivered: 1,
      diverted: 1,
      policySources: { dane: 2 },
      certificateProblems: { 'dane-no-match': 1 },
      divertedByReason: { 'dane-no-match': 1 },
    });
    // A bounce with no policy recorded (nothing was planned) counts under no source.
    expect(byName.get('gone.example')).toMatchObject({ bounced: 2, policySources: { default: 1 } });
    expect(report.tlsVersions).toEqual({ 'TLSv1.3': 3, 'TLSv1.2': 1 });
    expect(report.topDiverted).toEqual([
      { domain: 'legacy.example', count: 2 },
      { domain: 'dane.example', count: 1 },
    ]);
  });

  it('counts portal pickups per item, not per event', async () => {
    const report = await buildReport(world(), { from: FROM, to: TO }, OPTIONS);
    // i1 stored, notified, opened, read twice (viewed, downloaded); i2 expired unread; i3 read then expired; i4 withdrawn.
    expect(report.portal).toEqual({ stored: 4, notified: 1, opened: 1, read: 2, expiredUnread: 1, closedByAdmin: 1 });
  });

  it('is null for the portal when the period has no portal event', async () => {
    const log = new MemoryEvidenceLog();
    log.append([outcome({ at: FROM, queueId: 'q1', recipient: 'a@partner.example', outcome: 'delivered', tls: TLS13 })], FROM);
    expect((await buildReport(log, { from: FROM, to: TO }, OPTIONS)).portal).toBeNull();
  });

  it('lists admin actions with exact totals and at most 500 rows', async () => {
    const report = await buildReport(world(), { from: FROM, to: TO }, OPTIONS);
    expect(report.adminActions).toEqual({
      total: 2,
      byAction: { 'queue.delete': 1, 'fallback.release': 1 },
      rows: [
        { at: '2026-11-03T06:00:00.000Z', actor: 'ops', action: 'queue.delete', id: 'q5' },
        { at: '2026-11-04T01:00:00.000Z', actor: 'lead', action: 'fallback.release', id: 'f1' },
      ],
    });
    const many = new MemoryEvidenceLog();
    many.append(
      Array.from({ length: 620 }, (_, i) => adminAction(FROM + i, i % 2 === 0 ? 'queue.retry' : 'queue.delete', `q${i}`)),
      FROM + 1000,
    );
    many.append(
      [{ kind: 'evidence-pruned', at: FROM + 2000, queueId: null, messageId: null, recipient: null, sender: null, actor: 'cli:root', data: { days: ['2020-01-01', '2020-01-02'], records: 4 } }],
      FROM + 2000,
    );
    const big = await buildReport(many, { from: FROM, to: TO }, OPTIONS);
    expect(big.adminActions.total).toBe(621);
    expect(big.adminActions.byAction).toEqual({ 'queue.retry': 310, 'queue.delete': 310, 'evidence.prune': 1 });
    expect(big.adminActions.rows).toHaveLength(500);
  });

  it('uses the role’s sender and domain filters and counts only what matches', async () => {
    const log = world();
    const bySender = await buildReport(log, { from: FROM, to: TO, sender: 'OTHER@clinic.test' }, OPTIONS);
    expect(log.queries.at(-1)).toMatchObject({ from: FROM, to: TO, sender: 'other@clinic.test' });
    expect(bySender.totals).toEqual({ delivered: 1, diverted: 0, bounced: 0, deferred: 0, messages: 1, recipients: 1 });
    expect(bySender.filters).toEqual({ domain: null, sender: 'other@clinic.test' });
    expect(bySender.adminActions.total).toBe(0);

    const byDomain = await buildReport(log, { from: FROM, to: TO, domain: 'Legacy.Example' }, OPTIONS);
    expect(log.queries.at(-1)).toMatchObject({ domain: 'legacy.example' });
    expect(byDomain.domains.map((d) => d.domain)).toEqual(['legacy.example']);
    expect(byDomain.totals).toMatchObject({ diverted: 2, delivered: 0, messages: 2 });
    // i1 and i4 (c@legacy) and i2 (d@legacy): i3 is dane.example's.
    expect(byDomain.portal).toMatchObject({ stored: 3, read: 1, expiredUnread: 1, closedByAdmin: 1 });
  });

  it('keeps a domain filter even when a store hands back more than asked', async () => {
    const log = world();
    const loose: ReportLog = {
      queryEvidence: (query) => log.queryEvidence({ ...query, domain: undefined, sender: undefined }),
      evidenceDays: log.evidenceDays,
      readEvidenceDay: log.readEvidenceDay,
      evidenceAnchors: log.evidenceAnchors,
      evidenceBase: log.evidenceBase,
      evidenceHead: log.evidenceHead,
    };
    const report = await buildReport(loose, { from: FROM, to: TO, domain: 'dane.example', sender: 'app@clinic.test' }, OPTIONS);
    expect(report.domains.map((d) => d.domain)).toEqual(['dane.example']);
    expect(report.totals).toMatchObject({ delivered: 1, diverted: 1, messages: 1 });
    expect(report.portal).toEqual({ stored: 1, notified: 0, opened: 0, read: 1, expiredUnread: 0, closedByAdmin: 0 });
    expect(report.adminActions.total).toBe(0);
  });

  it('leaves out records before `from` and at or after `to`', async () => {
    const report = await buildReport(world(), { from: FROM, to: TO }, OPTIONS);
    const gone = report.domains.find((d) => d.domain === 'gone.example')!;
    expect(gone.bounced).toBe(2); // q7 at to − 1 counts
    expect(report.domains.find((d) => d.domain === 'partner.example')!.messages).toBe(2); // q0 (before) and q8 (at to) do not
    const next = await buildReport(world(), { from: TO, to: TO + DAY }, OPTIONS);
    expect(next.totals).toEqual({ delivered: 1, diverted: 0, bounced: 0, deferred: 0, messages: 1, recipients: 1 });
  });

  it('draws the timeline by UTC day, or by hour for two days or less', async () => {
    const report = await buildReport(world(), { from: FROM, to: TO }, OPTIONS);
    expect(report.timeline.map((p) => p.start)).toEqual(['2026-11-02T00:00:00.000Z', '2026-11-03T00:00:00.000Z', '2026-11-04T00:00:00.000Z']);
    expect(report.timeline.map((p) => [p.delivered, p.diverted, p.bounced, p.deferred])).toEqual([
      [1, 1, 0, 1],
      [3, 2, 1, 1],
      [0, 0, 1, 0],
    ]);
    const hourly = await buildReport(world(), { from: FROM, to: FROM + DAY }, OPTIONS);
    expect(hourly.timeline).toHaveLength(24);
    expect(hourly.timeline[1]).toEqual({ start: '2026-11-02T01:00:00.000Z', delivered: 0, diverted: 0, bounced: 0, deferred: 1 });
    expect(timelineBuckets(FROM + 30 * 60_000, FROM + 2 * HOUR).map((p) => p.start)).toEqual(['2026-11-02T00:00:00.000Z', '2026-11-02T01:00:00.000Z']);
    expect(timelineBuckets(FROM, FROM + 2 * DAY + 1)).toHaveLength(3);
  });

  it('reports the chain over the period’s days with their anchors, and names a break', async () => {
    const log = world();
    const report = await buildReport(log, { from: FROM, to: TO }, OPTIONS);
    // Days 11-02, 11-03 and 11-04 hold 5 + 14 + 6 records; the first two are sealed by the appends after them.
    expect(report.chain).toMatchObject({ ok: true, records: 25, firstBroken: null });
    expect(report.chain.anchors.map((a) => [a.day, a.count])).toEqual([
      ['2026-11-02', 5],
      ['2026-11-03', 14],
      ['2026-11-04', 6],
    ]);
    expect(Object.keys(report.chain.anchors[0]!).sort()).toEqual(['count', 'day', 'hash', 'lastHash', 'lastSeq']);

    const lines = log.lines.get('2026-11-03')!;
    lines[3] = lines[3]!.replace('"delivered"', '"diverted"');
    const broken = await buildReport(log, { from: FROM, to: TO }, OPTIONS);
    expect(broken.chain.ok).toBe(false);
    expect(broken.chain.firstBroken).toMatchObject({ day: '2026-11-03', line: 4, reason: expect.stringContaining('changed after it was written') });
  });

  it('hands the busiest domains by recipients, with what they negotiated, to the posture check', async () => {
    const seen: PostureDomain[][] = [];
    const posture = async (domains: PostureDomain[]): Promise<PartnerPosture[]> => {
      seen.push(domains);
      return domains.map((d) => ({ domain: d.domain, recipients: d.recipients, verdict: 'deliver', reason: 'ok', policy: 'default', mx: [], negotiated: d.negotiated }));
    };
    const report = await buildReport(world(), { from: FROM, to: TO }, { ...OPTIONS, posture, postureDomains: 2 });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toEqual([
      { domain: 'partner.example', recipients: 3, negotiated: [expect.objectContaining({ protocol: 'TLSv1.3', count: 2 }), expect.objectContaining({ protocol: 'TLSv1.2', count: 1 })] },
      { domain: 'dane.example', recipients: 2, negotiated: [expect.objectContaining({ protocol: 'TLSv1.3', count: 1 })] },
    ]);
    expect(report.posture?.map((p) => p.domain)).toEqual(['partner.example', 'dane.example']);
    expect((await buildReport(world(), { from: FROM, to: TO }, OPTIONS)).posture).toBeNull();
  });

  it('refuses an empty or reversed period', async () => {
    await expect(buildReport(world(), { from: TO, to: FROM }, OPTIONS)).rejects.toThrow(RangeError);
    await expect(buildReport(world(), { from: FROM, to: FROM }, OPTIONS)).rejects.toThrow(RangeError);
  });
});

describe('policySource and certificateProblem', () => {
  it('maps the recorded policy to its source, DANE first', () => {
    expect(policySource(POLICY.enforce)).toBe('mta-sts-enforce');
    expect(policySource(POLICY.testing)).toBe('mta-sts-testing');
    expect(policySource({ ...POLICY.enforce, dane: 'secure-tlsa' })).toBe('dane');
    expect(policySource({ ...POLICY.enforce, dane: 'insecure' })).toBe('mta-sts-enforce');
    expect(policySource(POLICY.rule)).toBe('domain-rule');
    expect(policySource(POLICY.plain)).toBe('default');
    expect(policySource(null)).toBeNull();
  });

  it('names certificate and DANE failures only', () => {
    expect(certificateProblem(attempt('certificate-name-mismatch'))).toBe('certificate-name-mismatch');
    expect(certificateProblem(attempt('dane-ta-expired'))).toBe('dane-ta-expired');
    expect(certificateProblem(attempt('dane-tlsa-bogus'))).toBe('dane-tlsa-bogus');
    expect(certificateProblem(attempt('starttls-not-offered'))).toBeNull();
    expect(certificateProblem(attempt('tls-profile'))).toBeNull();
    expect(certificateProblem(attempt('compliant'))).toBeNull();
  });
});
