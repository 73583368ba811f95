import { gunzipSync } from 'node:zlib';
import { silentLogger } from '../../src/log/logger';
import { buildReport, createTlsRptRecorder, gzipReport, reportFileName, validateReport, type TlsReport, type TlsSessionFacts } from '../../src/tlsrpt';
import { memoryCounters } from './memory-counters';

const DAY = '2026-11-29';
const AT = Date.parse(`${DAY}T10:00:00Z`);
const identity = { organizationName: 'Sealgate Test', contactInfo: 'tlsrpt@relay.test', submitter: 'relay.test' };

function session(overrides: Partial<TlsSessionFacts> = {}): TlsSessionFacts {
  return { at: AT, domain: 'example.org', sts: null, mx: 'mx1.example.org', dane: null, address: '127.0.0.10', localAddress: '127.0.0.1', failure: null, ...overrides };
}

const sts = { mode: 'enforce' as const, mx: ['mx1.example.org'], maxAge: 86400 };

async function reportFrom(events: TlsSessionFacts[]): Promise<TlsReport> {
  const counters = memoryCounters();
  const recorder = createTlsRptRecorder({ counters, logger: silentLogger() });
  recorder.tlsSessions(events);
  await recorder.flush();
  return buildReport({ counters, domain: 'example.org', day: DAY, ...identity });
}

describe('buildReport', () => {
  test('the RFC 8460 §4.4 shape: one entry per policy, summary counts, failure details added up', async () => {
    const expired = { code: 'certificate-untrusted', reason: 'expired', certificateError: 'CERT_HAS_EXPIRED' };
    const report = await reportFrom([
      session({ sts }),
      session({ sts }),
      session({ sts, failure: expired }),
      session({ sts, failure: expired }),
      session({ sts, address: '127.0.0.11', failure: { code: 'starttls-not-offered', reason: 'STARTTLS not offered', certificateError: null } }),
      // Not counted: a transient network failure.
      session({ sts, failure: { code: 'connect-failed', reason: 'ECONNREFUSED', certificateError: null } }),
      // Another domain and another day do not show up.
      session({ domain: 'other.test' }),
      session({ at: AT + 86_400_000 }),
      session(),
    ]);
    expect(report).toEqual({
      'organization-name': 'Sealgate Test',
      'date-range': { 'start-datetime': '2026-11-29T00:00:00Z', 'end-datetime': '2026-11-29T23:59:59Z' },
      'contact-info': 'tlsrpt@relay.test',
      'report-id': '2026-11-29_example.org@relay.test',
      policies: [
        {
          policy: { 'policy-type': 'no-policy-found', 'policy-string': [], 'policy-domain': 'example.org', 'mx-host': [] },
          summary: { 'total-successful-session-count': 1, 'total-failure-session-count': 0 },
          'failure-details': [],
        },
        {
          policy: {
            'policy-type': 'sts',
            'policy-string': ['version: STSv1', 'mode: enforce', 'mx: mx1.example.org', 'max_age: 86400'],
            'policy-domain': 'example.org',
            'mx-host': ['mx1.example.org'],
          },
          summary: { 'total-successful-session-count': 2, 'total-failure-session-count': 3 },
          'failure-details': [
            {
              'result-type': 'certificate-expired',
              'sending-mta-ip': '127.0.0.1',
              'receiving-mx-hostname': 'mx1.example.org',
              'receiving-ip': '127.0.0.10',
              'failure-reason-code': 'CERT_HAS_EXPIRED',
              'failed-session-count': 2,
            },
            {
              'result-type': 'starttls-not-supported',
              'sending-mta-ip': '127.0.0.1',
              'receiving-mx-hostname': 'mx1.example.org',
              'receiving-ip': '127.0.0.11',
              'failure-reason-code': 'starttls-not-offered',
              'failed-session-count': 1,
            },
          ],
        },
      ],
    });
    expect(validateReport(report)).toEqual([]);
  });

  test('secure TLSA records that are all unusable: the session succeeds, a tlsa-invalid detail with no failed session says so', async () => {
    const dane = {
      state: 'secure-tlsa' as const,
      records: [{ usage: 1, selector: 1, matchingType: 1, data: 'ab'.repeat(32) }],
      usable: [],
      referenceNames: ['mx1.example.org'],
      tlsaName: '_25._tcp.mx1.example.org',
      reason: 'only PKIX usages',
    };
    const report = await reportFrom([session({ dane }), session({ dane })]);
    expect(report.policies).toEqual([
      {
        policy: { 'policy-type': 'tlsa', 'policy-string': [`1 1 1 ${'ab'.repeat(32)}`], 'policy-domain': 'example.org', 'mx-host': ['mx1.example.org'] },
        summary: { 'total-successful-session-count': 2, 'total-failure-session-count': 0 },
        'failure-details': [{ 'result-type': 'tlsa-invalid', 'receiving-mx-hostname': 'mx1.example.org', 'failure-reason-code': 'all-unusable-records', 'failed-session-count': 0 }],
      },
    ]);
    expect(validateReport(report)).toEqual([]);
  });

  test('a day without counters is a valid report with no policies', async () => {
    const report = await buildReport({ counters: memoryCounters(), domain: 'example.org', day: DAY, ...identity, reportId: 'r-1' });
    expect(report.policies).toEqual([]);
    expect(report['report-id']).toBe('r-1');
    expect(validateReport(report)).toEqual([]);
  });

  test('counters it did not write are left out, not reported as garbage', async () => {
    const counters = memoryCounters();
    await counters.tlsRptCount(DAY, 'example.org', 'not json', null);
    await counters.tlsRptCount(DAY, 'example.org', '["sts",[],[]]', '["bogus-type"]');
    const report = await buildReport({ counters, domain: 'example.org', day: DAY, ...identity });
    expect(validateReport(report)).toEqual([]);
    expect(report.policies.flatMap((p) => p['failure-details'])).toEqual([]);
  });

  test('refuses a day that is not a calendar day', async () => {
    await expect(buildReport({ counters: memoryCounters(), domain: 'example.org', day: '2026-02-30', ...identity })).rejects.toThrow(/YYYY-MM-DD/);
  });
});

describe('the recorder', () => {
  test('a store failure is logged and dropped, never thrown at the delivery engine', async () => {
    const counters = memoryCounters();
    counters.failNext = new Error('store down');
    const warnings: unknown[] = [];
    const logger = { ...silentLogger(), warn: (o: unknown) => warnings.push(o) } as unknown as ReturnType<typeof silentLogger>;
    const recorder = createTlsRptRecorder({ counters, logger });
    expect(() => recorder.tlsSessions([session(), session()])).not.toThrow();
    await recorder.flush();
    expect(warnings).toEqual([expect.objectContaining({ event: 'tlsrpt-count-failed', err: 'store down' })]);
    expect(await counters.tlsRptRead('example.org', DAY)).toEqual([expect.objectContaining({ count: 1 })]);
  });

  test('prunes counters older than 14 days once per day', async () => {
    const counters = memoryCounters();
    await counters.tlsRptCount('2026-11-14', 'example.org', 'P', null);
    await counters.tlsRptCount('2026-11-15', 'example.org', 'P', null);
    const recorder = createTlsRptRecorder({ counters, logger: silentLogger() });
    recorder.tlsSessions([session()]);
    await recorder.flush();
    expect(await counters.tlsRptDomains('2026-11-14')).toEqual([]);
    expect(await counters.tlsRptDomains('2026-11-15')).toEqual(['example.org']);
  });
});

describe('validateReport', () => {
  let good: TlsReport;
  beforeAll(async () => {
    good = await reportFrom([session({ sts }), session({ failure: { code: 'tls-profile', reason: 'TLSv1.1', certificateError: null } })]);
  });
  const mutate = (change: (r: Record<string, any>) => void): unknown => {
    const copy = JSON.parse(JSON.stringify(good)) as Record<string, any>;
    change(copy);
    return copy;
  };

  test('accepts the RFC example shape, mx-host as a string (erratum 6241) included', () => {
    expect(validateReport(good)).toEqual([]);
    expect(validateReport(mutate((r) => (r.policies[1].policy['mx-host'] = 'mx1.example.org')))).toEqual([]);
  });

  test.each([
    ['a missing organization-name', (r: Record<string, any>) => delete r['organization-name'], /organization-name/],
    ['an unknown top-level field', (r: Record<string, any>) => (r.extra = 1), /unknown field "extra"/],
    ['a date that is not RFC 3339', (r: Record<string, any>) => (r['date-range']['start-datetime'] = '2026-11-29 00:00'), /start-datetime/],
    ['an end before the start', (r: Record<string, any>) => (r['date-range']['end-datetime'] = '2026-11-28T00:00:00Z'), /end-datetime before/],
    ['policies not an array', (r: Record<string, any>) => (r.policies = {}), /policies: missing or not an array/],
    ['an unknown policy type', (r: Record<string, any>) => (r.policies[0].policy['policy-type'] = 'dane'), /policy-type/],
    ['an sts policy without policy-string', (r: Record<string, any>) => delete r.policies[1].policy['policy-string'], /policy-string/],
    ['a negative count', (r: Record<string, any>) => (r.policies[0].summary['total-successful-session-count'] = -1), /total-successful-session-count/],
    ['a fractional count', (r: Record<string, any>) => (r.policies[0]['failure-details'][0]['failed-session-count'] = 0.5), /failed-session-count: missing or not a non-negative integer/],
    ['an unregistered result type', (r: Record<string, any>) => (r.policies[0]['failure-details'][0]['result-type'] = 'tls-broken'), /registered result type/],
    ['a sending-mta-ip that is not an IP', (r: Record<string, any>) => (r.policies[0]['failure-details'][0]['sending-mta-ip'] = 'relay.test'), /sending-mta-ip/],
    ['an unknown failure-detail field', (r: Record<string, any>) => (r.policies[0]['failure-details'][0].note = 'x'), /unknown field "note"/],
    ['details adding up to more than the failures', (r: Record<string, any>) => (r.policies[0]['failure-details'][0]['failed-session-count'] = 5), /more than total-failure-session-count/],
  ])('rejects %s', (_name, change, problem) => {
    const problems = validateReport(mutate(change));
    expect(problems).toEqual(expect.arrayContaining([expect.stringMatching(problem)]));
  });

  test('rejects what is not a report at all', () => {
    expect(validateReport(null)).toEqual(['report: not a JSON object']);
    expect(validateReport([])).toEqual(['report: not a JSON object']);
  });
});

describe('file name and encoding', () => {
  test('RFC 8460 file name: submitter!domain!begin!end[!id].json.gz', () => {
    const begin = Date.parse('2026-11-29T00:00:00Z');
    expect(reportFileName('relay.test', 'example.org', begin, begin + 86_400_000, 'abc-1')).toBe('relay.test!example.org!1795910400!1795996800!abc-1.json.gz');
    expect(reportFileName('relay.test', 'example.org', begin, begin + 86_400_000, undefined, false)).toBe('relay.test!example.org!1795910400!1795996800.json');
    expect(() => reportFileName('relay.test', 'example.org', begin, begin, 'a.b')).toThrow();
    expect(() => reportFileName('relay!test', 'example.org', begin, begin)).toThrow();
  });

  test('gzipReport gunzips to the same JSON', async () => {
    const report = await reportFrom([session()]);
    expect(JSON.parse(gunzipSync(gzipReport(report)).toString('utf8'))).toEqual(report);
  });
});
