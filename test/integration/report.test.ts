import { parse } from 'csv-parse/sync';
import type { ReportData } from '../../src/report/types';
import type { MessageRecord } from '../../src/store/types';
import { runCli } from '../support/relay-process';
import { REJECTED_RECIPIENT, standardScenarios } from '../support/world';
import { submit } from '../support/submit';
import { waitForFinal } from '../support/wait';
import { startWorldRelay, type WorldRelay } from '../support/world-relay';

/**
 * The compliance report against a real run: one message through the relay process into the test world, then
 * `sealgate report` as JSON and CSV; its counts per domain must be the outcomes the store recorded for each
 * recipient (every attempt's outcome, a deferral then a delivery counting as both).
 */

const RECIPIENTS = [
  'patient@tls13.test',
  'patient@tls12.test',
  'patient@tls11.test',
  'patient@nostarttls.test',
  'patient@sts-badcert.test',
  'patient@sts-testing.test',
  'patient@sts-enforce.test',
  'patient@secondmx.test',
  'patient@tempfail.test',
  'patient@nullmx.test',
  REJECTED_RECIPIENT,
];

type Counts = { delivered: number; diverted: number; bounced: number; deferred: number };

/** Per recipient domain, every outcome in the recipients' histories: what the store says happened. */
function storeOutcomes(message: MessageRecord): Record<string, Counts> {
  const byDomain: Record<string, Counts> = {};
  for (const job of message.jobs) {
    for (const recipient of job.recipients) {
      const domain = recipient.address.slice(recipient.address.lastIndexOf('@') + 1);
      const counts = (byDomain[domain] ??= { delivered: 0, diverted: 0, bounced: 0, deferred: 0 });
      for (const entry of recipient.history) counts[entry.outcome]++;
    }
  }
  return byDomain;
}

describe('sealgate report over a test-world run', () => {
  let setup: WorldRelay | undefined;
  let message: MessageRecord;
  let from: string;
  let to: string;

  beforeAll(async () => {
    setup = await startWorldRelay(standardScenarios());
    from = new Date(Date.now() - 60_000).toISOString();
    const id = await submit(setup.relay.ports.smarthost!, RECIPIENTS, Buffer.from('From: clinic@sender.test\r\nSubject: lab results\r\nMessage-ID: <report@sender.test>\r\n\r\nresults\r\n'));
    message = await waitForFinal(setup.store, id, 45_000);
    to = new Date(Date.now() + 60_000).toISOString();
  }, 90_000);

  afterAll(async () => {
    await setup?.stop();
  });

  test('the JSON report counts what the store recorded, per domain, with TLS, reasons, policies and the chain', async () => {
    const expected = storeOutcomes(message);
    // The run has all four outcomes, and the 451-once domain a deferral then a delivery.
    expect(expected['tempfail.test']).toEqual({ delivered: 1, diverted: 0, bounced: 0, deferred: 1 });
    expect(Object.values(expected).some((c) => c.bounced > 0) && Object.values(expected).some((c) => c.diverted > 0)).toBe(true);

    const res = await runCli(['--config', setup!.fixture.configFile, 'report', '--from', from, '--to', to, '--sender', 'clinic@sender.test'], { timeoutMs: 90_000 });
    expect({ code: res.code, stderr: res.stderr }).toEqual({ code: 0, stderr: expect.any(String) });
    const report = JSON.parse(res.stdout) as ReportData;

    const reported = Object.fromEntries(report.domains.map((d) => [d.domain, { delivered: d.delivered, diverted: d.diverted, bounced: d.bounced, deferred: d.deferred }]));
    expect(reported).toEqual(expected);
    const sum = (key: keyof Counts) => Object.values(expected).reduce((n, c) => n + c[key], 0);
    expect(report.totals).toEqual({ delivered: sum('delivered'), diverted: sum('diverted'), bounced: sum('bounced'), deferred: sum('deferred'), messages: 1, recipients: RECIPIENTS.length });
    for (const d of report.domains) expect(d.messages).toBe(1);

    const byName = new Map(report.domains.map((d) => [d.domain, d]));
    expect(byName.get('tls13.test')!.deliveredByTls).toEqual([{ protocol: 'TLSv1.3', cipher: expect.any(String), count: 1 }]);
    expect(byName.get('tls12.test')!.deliveredByTls).toEqual([{ protocol: 'TLSv1.2', cipher: 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256', count: 1 }]);
    expect(byName.get('sts-enforce.test')!.policySources).toEqual({ 'mta-sts-enforce': 1 });
    expect(byName.get('sts-testing.test')!.policySources).toEqual({ 'mta-sts-testing': 1 });
    expect(byName.get('tls13.test')!.policySources).toEqual({ default: 1 });
    expect(byName.get('sts-badcert.test')!.certificateProblems).toEqual({ 'certificate-untrusted': expect.any(Number) });
    for (const domain of ['tls11.test', 'nostarttls.test', 'sts-badcert.test']) {
      const job = message.jobs.find((j) => j.domain === domain)!;
      expect(byName.get(domain)!.divertedByReason).toEqual({ [job.recipients[0]!.history.at(-1)!.reason]: 1 });
    }
    expect(report.tlsVersions).toEqual({ 'TLSv1.3': expect.any(Number), 'TLSv1.2': 1 });
    expect(report.topDiverted.map((t) => t.domain).sort()).toEqual(['nostarttls.test', 'sts-badcert.test', 'tls11.test']);
    expect(report.chain).toMatchObject({ ok: true, firstBroken: null });
    expect(report.chain.records).toBeGreaterThanOrEqual(Object.values(expected).reduce((n, c) => n + c.delivered + c.diverted + c.bounced + c.deferred, 0));
    expect(report.filters).toEqual({ domain: null, sender: 'clinic@sender.test' });

    // The partner posture of the busiest domains, checked against the world now.
    expect(report.posture).toHaveLength(10);
    const posture = new Map(report.posture!.map((p) => [p.domain, p]));
    expect(posture.get('nostarttls.test')).toMatchObject({ recipients: 1, verdict: 'divert' });
    expect(posture.get('secondmx.test')).toMatchObject({ verdict: 'deliver', negotiated: [expect.objectContaining({ protocol: 'TLSv1.3', count: 1 })] });
  }, 120_000);

  test('the CSV report parses and has the same counts, one domain or all', async () => {
    const expected = storeOutcomes(message);
    const res = await runCli(['--config', setup!.fixture.configFile, 'report', '--from', from, '--to', to, '--sender', 'clinic@sender.test', '--format', 'csv', '--no-posture'], { timeoutMs: 60_000 });
    expect(res.code).toBe(0);
    const rows = parse<Record<string, string>>(res.stdout, { columns: true });
    const total = rows.pop()!;
    expect(Object.fromEntries(rows.map((r) => [r.domain, { delivered: Number(r.delivered), diverted: Number(r.diverted), bounced: Number(r.bounced), deferred: Number(r.deferred) }]))).toEqual(
      expected,
    );
    expect(total.domain).toBe('TOTAL');
    expect(Number(total.deferred)).toBe(Object.values(expected).reduce((n, c) => n + c.deferred, 0));
    expect(rows.find((r) => r.domain === 'tls12.test')).toMatchObject({ 'delivered TLSv1.2': '1', 'delivered TLSv1.3': '0' });

    const one = await runCli(['--config', setup!.fixture.configFile, 'report', '--from', from, '--to', to, '--domain', 'tempfail.test', '--format', 'csv', '--no-posture'], { timeoutMs: 60_000 });
    expect(one.code).toBe(0);
    expect(parse<Record<string, string>>(one.stdout, { columns: true }).map((r) => [r.domain, r.delivered, r.deferred])).toEqual([
      ['tempfail.test', '1', '1'],
      ['TOTAL', '1', '1'],
    ]);
  }, 120_000);

  // Not a check: with SEALGATE_REPORT_SAMPLE=<folder> the run's report is also written there in every format, so a
  // person can look at what an auditor would get (the HTML and PDF are checked in test/report/*.browser.test.ts).
  const sampleDir = process.env.SEALGATE_REPORT_SAMPLE;
  if (sampleDir) {
    test('writes the sample report of this run', async () => {
      for (const format of ['json', 'csv', 'html', 'pdf']) {
        const out = `${sampleDir}/test-world-report.${format}`;
        const res = await runCli(['--config', setup!.fixture.configFile, 'report', '--from', from, '--to', to, '--format', format, '--out', out], { timeoutMs: 120_000 });
        expect({ format, code: res.code, stderr: res.stderr }).toEqual({ format, code: 0, stderr: expect.any(String) });
      }
    }, 300_000);
  }
});
