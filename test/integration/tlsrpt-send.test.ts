import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { dkimVerify } from 'mailauth';
import { simpleParser } from 'mailparser';
import { silentLogger } from '../../src/log/logger';
import type { Config } from '../../src/config/schema';
import { createResolver } from '../../src/policy/resolver';
import type { Store } from '../../src/store/types';
import { createConfiguredSender } from '../../src/tlsrpt/runtime';
import { claimReport } from '../../src/tlsrpt/schedule';
import type { SendResult } from '../../src/tlsrpt/send';
import { storeReportSource } from '../../src/tlsrpt/source';
import { validateReport } from '../../src/tlsrpt/validate';
import { runCli, type RelayFixture, type RelayProcess } from '../support/relay-process';
import { standardScenarios, tlsRptScenarios, TLSRPT_MAILBOX, type World } from '../support/world';
import { submit } from '../support/submit';
import { waitForFinal } from '../support/wait';
import { startWorldRelay, type WorldRelay } from '../support/world-relay';

/**
 * TLS-RPT reports leaving a real relay: sessions to world domains that publish `_smtp._tls` are counted, then
 * `sealgate tlsrpt send` builds each report and sends it to the domain's destinations: report mail (queued,
 * delivered by the running relay to the world's mailto sink, DKIM-signed) and a POST to the world's HTTPS endpoint.
 */

interface Report {
  'report-id': string;
  'organization-name': string;
  policies: Array<{
    policy: { 'policy-type': string; 'policy-domain': string; 'mx-host'?: string[] };
    summary: { 'total-successful-session-count': number; 'total-failure-session-count': number };
    'failure-details'?: Array<{ 'result-type': string; 'receiving-mx-hostname'?: string; 'failed-session-count': number }>;
  }>;
}

function body(tag: string): Buffer {
  return Buffer.from(`From: <clinic@sender.test>\r\nTo: <patient@example.test>\r\nSubject: private ${tag}\r\nMessage-ID: <${tag}@sender.test>\r\n\r\nhello ${tag}\r\n`);
}

const today = () => new Date().toISOString().slice(0, 10);

describe('TLS-RPT reports, sent', () => {
  let setup: WorldRelay | undefined;
  let world: World;
  let fixture: RelayFixture;
  let relay: RelayProcess;
  let store: Store;
  let config: Config;
  let dkimTxt: string;
  let day: string;
  const dkimResolver = async (name: string, rrtype: string) => {
    if (rrtype === 'TXT' && name === 'tlsrpt._domainkey.relay.test') return [[dkimTxt]];
    throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
  };
  // The command once (each CLI process costs seconds); the other sends run the same sender in this process, on the relay's store.
  const sendWithCli = (domain: string) => runCli(['--config', fixture.configFile, 'tlsrpt', 'send', domain, '--date', day, '--json'], { timeoutMs: 60_000 });
  const send = (domain: string): Promise<SendResult> =>
    createConfiguredSender({ config, store, resolver: createResolver(config.dns), source: storeReportSource(store, config), logger: silentLogger() }).send(domain, day);

  beforeAll(async () => {
    const standard = standardScenarios();
    setup = await startWorldRelay(
      { ...tlsRptScenarios(), 'sender.test': standard['sender.test']! },
      {
        config: {
          // One message per connection: every message is a new session, so the sessions the test makes are known.
          delivery: { retrySchedule: ['1s'], pollInterval: '200ms', maxMessagesPerConnection: 1 },
          domains: { 'rpt-wrongname.test': { level: 'verify' } },
          tlsrpt: {
            enabled: true,
            maxDelay: 0,
            organizationName: 'Sealgate Test Relay',
            submitter: 'relay.test',
            dkim: { domain: 'relay.test', selector: 'tlsrpt', keyFile: 'dkim.pem' },
            httpsTimeout: '10s',
          },
        },
        beforeStart: (created) => {
          const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
          writeFileSync(path.join(created.dir, 'dkim.pem'), pair.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
          dkimTxt = `v=DKIM1; k=rsa; p=${pair.publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}`;
        },
      },
    );
    ({ world, fixture, relay, store, config } = setup);

    // The sessions the reports must count: two good ones, one without STARTTLS, one with a certificate for another name.
    day = today();
    const ids = [
      await submit(relay.ports.smarthost!, ['a@rpt-good.test', 'a@rpt-nostarttls.test', 'a@rpt-wrongname.test', 'a@rpt-badrecord.test'], body('one')),
      await submit(relay.ports.smarthost!, ['b@rpt-good.test'], body('two')),
    ];
    for (const id of ids) await waitForFinal(store, id, 30_000);
    // A session on either side of midnight would split the counts over two days.
    if (today() !== day) throw new Error('the UTC day changed while the test made its sessions; run it again');
  }, 90_000);

  afterAll(async () => {
    await setup?.stop();
  });

  test('rpt-good.test: the report arrives by mail (multipart/report, RFC subject and headers, DKIM pass) and by https; counts match', async () => {
    // The relay runs the daily send (tlsrpt.enabled): it planned yesterday's reports at start.
    expect(relay.logs).toContainEqual(expect.objectContaining({ event: 'tlsrpt-scheduled', day: new Date(Date.parse(`${day}T00:00:00Z`) - 86_400_000).toISOString().slice(0, 10) }));
    const run = await sendWithCli('rpt-good.test');
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout) as { status: string; reportId: string; results: Array<{ kind: string; ok: boolean }> };
    // The command took the day's claim: the daily run of a relay on this store skips the report.
    expect(await claimReport(store, 'rpt-good.test', day)).toBe(false);
    expect(result).toMatchObject({
      status: 'sent',
      results: [
        { kind: 'mailto', ok: true },
        { kind: 'https', ok: true },
      ],
    });

    // By https: application/tlsrpt+gzip at the record's URL.
    const post = await world.tlsRpt!.waitFor((p) => p.path === '/v1/rpt-good.test', 10_000);
    expect(post.contentType).toBe('application/tlsrpt+gzip');
    expect(post.servername).toBe('tlsrpt.rpt-sink.test');
    const posted = JSON.parse(gunzipSync(post.body).toString()) as Report;
    expect(validateReport(posted)).toEqual([]);
    expect(posted['report-id']).toBe(result.reportId);
    expect(posted['organization-name']).toBe('Sealgate Test Relay');
    expect(posted.policies).toHaveLength(1);
    expect(posted.policies[0]).toMatchObject({
      policy: { 'policy-type': 'no-policy-found', 'policy-domain': 'rpt-good.test' },
      summary: { 'total-successful-session-count': 2, 'total-failure-session-count': 0 },
    });
    // As many as the MX saw TLS sessions.
    expect(world.mx('mx1.rpt-good.test').events.filter((e) => e.kind === 'tls')).toHaveLength(2);

    // By mail: delivered by the running relay to the sink's MX, with STARTTLS.
    const mail = await world.mailbox('rpt-sink.test').waitFor((m) => m.rcptTo.includes(TLSRPT_MAILBOX), 30_000);
    expect(mail.mailFrom).toBe('noreply-tlsrpt@relay.test');
    expect(mail.tls).toMatchObject({ protocol: 'TLSv1.3' });
    const parsed = await simpleParser(mail.raw);
    expect(parsed.headers.get('content-type')).toMatchObject({ value: 'multipart/report', params: { 'report-type': 'tlsrpt' } });
    expect(parsed.subject).toBe(`Report Domain: rpt-good.test Submitter: relay.test Report-ID: <${result.reportId}>`);
    expect(parsed.headers.get('tls-report-domain')).toBe('rpt-good.test');
    expect(parsed.headers.get('tls-report-submitter')).toBe('relay.test');
    expect(parsed.headers.get('tls-required')).toBe('No');
    expect(parsed.text).toContain('rpt-good.test');
    expect(parsed.attachments).toHaveLength(1);
    const attachment = parsed.attachments[0]!;
    expect(attachment.contentType).toBe('application/tlsrpt+gzip');
    expect(attachment.filename).toMatch(/^relay\.test!rpt-good\.test!\d{10}!\d{10}![0-9a-f]{16}\.json\.gz$/);
    const [, , begin, end] = attachment.filename!.split('!');
    expect(Number(end) - Number(begin)).toBe(86_400);
    expect(Number(begin) * 1000).toBe(Date.parse(`${day}T00:00:00Z`));
    const mailed = JSON.parse(gunzipSync(attachment.content).toString()) as Report;
    expect(validateReport(mailed)).toEqual([]);
    expect(mailed).toEqual(posted);
    const signature = /^DKIM-Signature:[^]*?(?=\r\n\S)/m.exec(mail.raw.toString())![0];
    expect(signature).toMatch(/d=relay\.test/);
    expect(signature).not.toMatch(/[;\s]l=/);
    expect((await dkimVerify(mail.raw, { resolver: dkimResolver })).results).toEqual([expect.objectContaining({ status: expect.objectContaining({ result: 'pass' }) })]);

    // The report mail itself went out opportunistically and is not counted: its domain has no counters.
    expect(await store.tlsRptDomains(day)).not.toContain('rpt-sink.test');
  }, 60_000);

  test('rpt-nostarttls.test and rpt-wrongname.test: the failures, with their result types, arrive', async () => {
    expect(await send('rpt-nostarttls.test')).toMatchObject({ status: 'sent' });
    const post = await world.tlsRpt!.waitFor((p) => p.path === '/v1/rpt-nostarttls.test', 10_000);
    const report = JSON.parse(gunzipSync(post.body).toString()) as Report;
    expect(validateReport(report)).toEqual([]);
    expect(report.policies[0]!.summary).toEqual({ 'total-successful-session-count': 0, 'total-failure-session-count': 1 });
    expect(report.policies[0]!['failure-details']).toEqual([
      expect.objectContaining({ 'result-type': 'starttls-not-supported', 'receiving-mx-hostname': 'mx1.rpt-nostarttls.test', 'failed-session-count': 1 }),
    ]);
    const mail = await world.mailbox('rpt-sink.test').waitFor((m) => m.rcptTo.includes(TLSRPT_MAILBOX) && /^TLS-Report-Domain: rpt-nostarttls\.test\r$/im.test(m.raw.toString()), 30_000);
    expect((await dkimVerify(mail.raw, { resolver: dkimResolver })).results).toEqual([expect.objectContaining({ status: expect.objectContaining({ result: 'pass' }) })]);
    // SEALGATE_TLSRPT_SAMPLE=file keeps one report as it arrived by mail: the header section and the report it carries.
    if (process.env.SEALGATE_TLSRPT_SAMPLE) {
      const raw = mail.raw.toString();
      const mailed = (await simpleParser(mail.raw)).attachments[0]!;
      writeFileSync(
        process.env.SEALGATE_TLSRPT_SAMPLE,
        `${raw.slice(0, raw.indexOf('\r\n\r\n'))}\n\n${mailed.filename}:\n${JSON.stringify(JSON.parse(gunzipSync(mailed.content).toString()), null, 2)}\n`,
      );
    }

    expect(await send('rpt-wrongname.test')).toMatchObject({ status: 'sent', results: [{ kind: 'https', ok: true }] });
    const wrong = JSON.parse(gunzipSync((await world.tlsRpt!.waitFor((p) => p.path === '/v1/rpt-wrongname.test', 10_000)).body).toString()) as Report;
    expect(validateReport(wrong)).toEqual([]);
    expect(wrong.policies[0]!.summary).toEqual({ 'total-successful-session-count': 0, 'total-failure-session-count': 1 });
    expect(wrong.policies[0]!['failure-details']).toEqual([expect.objectContaining({ 'result-type': 'certificate-host-mismatch', 'failed-session-count': 1 })]);
  }, 60_000);

  test('an invalid record: no report; an endpoint that refuses (503): a failure to retry, then the next send goes through', async () => {
    expect(await send('rpt-badrecord.test')).toMatchObject({ status: 'invalid-record', reason: expect.stringMatching(/scheme "ftp"/) });
    expect(world.tlsRpt!.posts.filter((p) => p.path.includes('rpt-badrecord'))).toEqual([]);

    world.tlsRpt!.setStatus(503);
    try {
      expect(await send('rpt-wrongname.test')).toMatchObject({ status: 'failed', retryable: true, results: [{ kind: 'https', ok: false, retryable: true, detail: 'HTTP 503' }] });
    } finally {
      world.tlsRpt!.setStatus(200);
    }
    expect(await send('rpt-wrongname.test')).toMatchObject({ status: 'sent', results: [{ kind: 'https', ok: true, detail: 'HTTP 200' }] });
  }, 60_000);
});
