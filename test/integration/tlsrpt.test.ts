import type { Store } from '../../src/store/types';
import { utcDay, validateReport, type TlsReport } from '../../src/tlsrpt';
import { runCli, type RelayFixture, type RelayProcess } from '../support/relay-process';
import { standardScenarios, type World } from '../support/world';
import { submit } from '../support/submit';
import { waitForFinal } from '../support/wait';
import { startWorldRelay, type WorldRelay } from '../support/world-relay';

/**
 * TLS-RPT counting through the real relay process and the test world: what `sealgate tlsrpt preview --json`
 * reports per domain equals the connections the world's MX servers saw, with the RFC's result types.
 */

const RECIPIENTS = ['patient@tls13.test', 'patient@nostarttls.test', 'patient@expired.test', 'patient@sts-enforce.test'];

const RAW = Buffer.from('From: clinic@sender.test\r\nSubject: private tlsrpt\r\nMessage-ID: <tlsrpt@sender.test>\r\n\r\nresults\r\n');

type Summary = { type: string; ok: number; failed: number; results: string[] };

describe('TLS-RPT counting end to end', () => {
  let setup: WorldRelay | undefined;
  let world: World;
  let fixture: RelayFixture;
  let relay: RelayProcess;
  let store: Store;

  beforeAll(async () => {
    setup = await startWorldRelay(standardScenarios(), {
      config: {
        domains: { 'expired.test': { level: 'verify' } },
        tlsrpt: { enabled: true, organizationName: 'Sealgate Test', contactInfo: 'tlsrpt@relay.test', submitter: 'relay.test' },
      },
    });
    ({ world, fixture, relay, store } = setup);
  });

  afterAll(async () => {
    await setup?.stop();
  });

  async function preview(domain: string, day: string): Promise<TlsReport> {
    const out = await runCli(['--config', fixture.configFile, 'tlsrpt', 'preview', domain, '--date', day, '--json'], { timeoutMs: 60_000 });
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    return JSON.parse(out.stdout) as TlsReport;
  }

  const summarize = (report: TlsReport): Summary[] =>
    report.policies.map((p) => ({
      type: p.policy['policy-type'],
      ok: p.summary['total-successful-session-count'],
      failed: p.summary['total-failure-session-count'],
      results: p['failure-details'].map((d) => `${d['result-type']} x${d['failed-session-count']}`),
    }));

  test('the preview counts each session the relay made, with its result type, and validates', async () => {
    const day = utcDay(Date.now());
    const id = await submit(relay.ports.smarthost!, RECIPIENTS, RAW);
    const message = await waitForFinal(store, id, 30_000);
    expect(Object.fromEntries(message.jobs.map((j) => [j.domain, j.state]))).toEqual({
      'tls13.test': 'delivered',
      'nostarttls.test': 'diverted',
      'expired.test': 'diverted',
      'sts-enforce.test': 'delivered',
    });

    const expected: Record<string, Summary[]> = {
      'tls13.test': [{ type: 'no-policy-found', ok: 1, failed: 0, results: [] }],
      'nostarttls.test': [{ type: 'no-policy-found', ok: 0, failed: 1, results: ['starttls-not-supported x1'] }],
      'expired.test': [{ type: 'no-policy-found', ok: 0, failed: 1, results: ['certificate-expired x1'] }],
      'sts-enforce.test': [{ type: 'sts', ok: 1, failed: 0, results: [] }],
    };
    // Counting runs beside delivery: wait (bounded) until every domain's sessions are in the store.
    const deadline = Date.now() + 10_000;
    const counted = async (domain: string) => (await store.tlsRptRead(domain, day)).reduce((n, t) => n + t.count, 0);
    while ((await Promise.all(Object.keys(expected).map(counted))).some((n) => n === 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    // One CLI process at a time: each one loads the TypeScript sources.
    const reports: Record<string, TlsReport> = {};
    for (const domain of Object.keys(expected)) reports[domain] = await preview(domain, day);
    expect(Object.fromEntries(Object.entries(reports).map(([d, r]) => [d, summarize(r)]))).toEqual(expected);

    for (const [domain, report] of Object.entries(reports)) {
      expect(validateReport(report)).toEqual([]);
      expect(report).toMatchObject({ 'organization-name': 'Sealgate Test', 'contact-info': 'tlsrpt@relay.test', 'date-range': { 'start-datetime': `${day}T00:00:00Z` } });
      // The counts equal the connections the domain's MX saw.
      const sessions = report.policies.reduce((n, p) => n + p.summary['total-successful-session-count'] + p.summary['total-failure-session-count'], 0);
      expect(world.mx(`mx1.${domain}`).events.filter((e) => e.kind === 'connect')).toHaveLength(sessions);
    }
    const sts = reports['sts-enforce.test']!.policies[0]!.policy;
    expect(sts).toEqual({
      'policy-type': 'sts',
      'policy-string': expect.arrayContaining(['mode: enforce', 'mx: *.sts-enforce.test']),
      'policy-domain': 'sts-enforce.test',
      'mx-host': ['*.sts-enforce.test'],
    });
    const [expired] = reports['expired.test']!.policies[0]!['failure-details'];
    expect(expired).toEqual({
      'result-type': 'certificate-expired',
      'sending-mta-ip': '127.0.0.1',
      'receiving-mx-hostname': 'mx1.expired.test',
      'receiving-ip': world.mx('mx1.expired.test').host,
      'failure-reason-code': 'CERT_HAS_EXPIRED',
      'failed-session-count': 1,
    });
    expect(reports['nostarttls.test']!.policies[0]!['failure-details'][0]!['sending-mta-ip']).toBe('127.0.0.1');

    // The text form is a short table.
    const text = await runCli(['--config', fixture.configFile, 'tlsrpt', 'preview', 'expired.test', '--date', day], { timeoutMs: 60_000 });
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/no-policy-found\s+-\s+0\s+1/);
    expect(text.stdout).toMatch(/certificate-expired\s+mx1\.expired\.test/);
  }, 180_000);

  test('a domain nobody wrote to previews as an empty report; a bad date is refused', async () => {
    const empty = await preview('nobody.test', '2026-01-01');
    expect(empty.policies).toEqual([]);
    const bad = await runCli(['--config', fixture.configFile, 'tlsrpt', 'preview', 'tls13.test', '--date', '2026-13-01'], { timeoutMs: 60_000 });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/YYYY-MM-DD/);
  }, 120_000);
});
