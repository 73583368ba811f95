import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import { simpleParser } from 'mailparser';
import { dkimVerify } from 'mailauth';
import { parseConfig } from '../../src/config/load';
import { silentLogger } from '../../src/log/logger';
import { loadDkimSigner } from '../../src/mail/dkim';
import { DnsError } from '../../src/policy/resolver';
import type { HeaderFacts, MessageRecord, NewMessage } from '../../src/store/types';
import { buildReportMail, reportSubject } from '../../src/tlsrpt/message';
import { createReportSender, newReportIds, type ReadyReport, type ReportSource } from '../../src/tlsrpt/send';
import { createConfiguredSender } from '../../src/tlsrpt/runtime';

/** Building, signing and queueing report mail, without sockets: a fake resolver, store and report source. */

const NOW = Date.UTC(2026, 10, 30, 2, 0, 0);
const DAY = '2026-11-29';
const REPORT = { 'organization-name': 'Riverside Clinic', 'report-id': 'x', policies: [] };
let dir: string;
let keyFile: string;
let dkimTxt: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-tlsrpt-send-'));
  const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
  keyFile = path.join(dir, 'dkim.pem');
  writeFileSync(keyFile, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  dkimTxt = `v=DKIM1; k=rsa; p=${pair.publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}`;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function config(tlsrpt: Record<string, unknown> = {}) {
  return parseConfig(
    {
      hostname: 'relay.clinic.example',
      listeners: [{ name: 'submission', port: 0, tls: 'starttls', auth: 'required' }],
      tlsrpt: { enabled: true, submitter: 'clinic.example', ...tlsrpt },
    },
    {},
    dir,
  );
}

function fakeStore() {
  const queued: Array<{ message: NewMessage; raw: Buffer; headers: HeaderFacts | undefined }> = [];
  return {
    queued,
    async enqueue(message: NewMessage, body: Readable, headers?: HeaderFacts): Promise<MessageRecord> {
      const parts: Buffer[] = [];
      for await (const chunk of body) parts.push(chunk as Buffer);
      queued.push({ message, raw: Buffer.concat(parts), headers });
      return { id: `Q${queued.length}` } as MessageRecord;
    },
    async cacheIncrement(): Promise<number> {
      return 1;
    },
  };
}

const source = (calls: string[] = []): ReportSource => ({
  domains: async () => ['example.org'],
  async build(domain, day, ids): Promise<ReadyReport> {
    calls.push(`${domain} ${day}`);
    return {
      domain,
      day,
      reportId: ids.reportId,
      gzip: gzipSync(JSON.stringify({ ...REPORT, 'report-id': ids.reportId })),
      fileName: `clinic.example!${domain}!1764374400!1764460799!${ids.uniqueId}.json.gz`,
    };
  },
});

const resolverWith = (txt: string[] | DnsError) => ({
  resolveTxt: async (name: string) => {
    if (name !== '_smtp._tls.example.org') throw new DnsError('nxdomain', `TXT ${name}`, 'ENOTFOUND');
    if (txt instanceof DnsError) throw txt;
    return txt;
  },
  lookup: () => {
    throw new Error('no sockets in this test');
  },
});

const dkimResolver = async (name: string, rrtype: string) => {
  if (rrtype === 'TXT' && name === 'reports._domainkey.clinic.example') return [[dkimTxt]];
  throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
};

describe('buildReportMail', () => {
  it('is multipart/report; report-type="tlsrpt" with the RFC subject and headers, a text part and the gzip as application/tlsrpt+gzip', async () => {
    const gzip = gzipSync('{"report-id":"r1"}');
    const raw = await buildReportMail({
      policyDomain: 'example.org',
      submitter: 'clinic.example',
      reportId: '20261129.abc@clinic.example',
      from: 'noreply-tlsrpt@clinic.example',
      to: 'tlsrpt@example.org',
      date: new Date(NOW),
      messageId: '<m1@clinic.example>',
      gzip,
      fileName: 'clinic.example!example.org!1764374400!1764460799!abc.json.gz',
      day: DAY,
    });
    const parsed = await simpleParser(raw);
    // report-type=tlsrpt is a MIME token: quoted or not, it is the same parameter.
    expect(parsed.headers.get('content-type')).toMatchObject({ value: 'multipart/report', params: { 'report-type': 'tlsrpt' } });
    expect(parsed.subject).toBe('Report Domain: example.org Submitter: clinic.example Report-ID: <20261129.abc@clinic.example>');
    expect(parsed.headers.get('tls-report-domain')).toBe('example.org');
    expect(parsed.headers.get('tls-report-submitter')).toBe('clinic.example');
    expect(parsed.headers.get('tls-required')).toBe('No');
    expect(parsed.messageId).toBe('<m1@clinic.example>');
    expect(parsed.text).toContain('example.org on 2026-11-29');
    expect(parsed.attachments).toHaveLength(1);
    const [attachment] = parsed.attachments;
    expect(attachment!.contentType).toBe('application/tlsrpt+gzip');
    expect(attachment!.filename).toBe('clinic.example!example.org!1764374400!1764460799!abc.json.gz');
    expect(gunzipSync(attachment!.content).toString()).toBe('{"report-id":"r1"}');
  });

  test('reportSubject', () => {
    expect(reportSubject('a.example', 'b.example', 'id-1')).toBe('Report Domain: a.example Submitter: b.example Report-ID: <id-1>');
  });
});

describe('createReportSender', () => {
  it('queues a DKIM-signed report mail (no l=) to a mailto rua as an opportunistic, uncounted message; mailauth verifies it', async () => {
    const store = fakeStore();
    const cfg = config({ dkim: { domain: 'clinic.example', selector: 'reports', keyFile } });
    const sender = createReportSender({
      config: cfg,
      resolver: resolverWith(['v=spf1 -all', 'v=TLSRPTv1; rua=mailto:tls-reports@example.org']),
      store,
      source: source(),
      signer: loadDkimSigner(cfg.tlsrpt.dkim, 'tlsrpt.dkim'),
      logger: silentLogger(),
      now: () => NOW,
    });
    const result = await sender.send('example.org', DAY);
    expect(result).toMatchObject({ status: 'sent', results: [{ uri: 'mailto:tls-reports@example.org', kind: 'mailto', ok: true, detail: 'queued as Q1' }] });
    const [{ message, raw, headers }] = store.queued as [(typeof store.queued)[number]];
    expect(message).toMatchObject({
      from: 'noreply-tlsrpt@clinic.example',
      recipients: [{ address: 'tls-reports@example.org' }],
      params: { notice: { kind: 'tlsrpt' }, tlsReport: true },
      receivedAt: NOW,
    });
    expect(headers).toMatchObject({ tlsRequired: 'No', from: 'noreply-tlsrpt@clinic.example' });
    const signature = /^DKIM-Signature:[^]*?(?=\r\n\S)/.exec(raw.toString())![0];
    expect(signature).toMatch(/d=clinic\.example/);
    expect(signature).toMatch(/s=reports/);
    expect(signature).not.toMatch(/[;\s]l=/);
    const verified = await dkimVerify(raw, { resolver: dkimResolver, curTime: NOW + 1000 });
    expect(verified.results.map((r) => r.status.result)).toEqual(['pass']);
    const parsed = await simpleParser(raw);
    expect(parsed.subject).toBe(`Report Domain: example.org Submitter: clinic.example Report-ID: <${(result as { reportId: string }).reportId}>`);
    expect(JSON.parse(gunzipSync(parsed.attachments[0]!.content).toString())).toMatchObject({ 'organization-name': 'Riverside Clinic' });
  });

  it('without tlsrpt.dkim a mailto rua is never sent unsigned: failed, not retryable, nothing queued', async () => {
    const store = fakeStore();
    const sender = createConfiguredSender({ config: config(), resolver: resolverWith(['v=TLSRPTv1; rua=mailto:r@example.org']), store, source: source(), logger: silentLogger() });
    const result = await sender.send('example.org', DAY);
    expect(result).toMatchObject({ status: 'failed', retryable: false, results: [{ ok: false, retryable: false, detail: expect.stringMatching(/no DKIM key configured/) }] });
    expect(store.queued).toHaveLength(0);
  });

  it('an unusable tlsrpt.dkim key fails at creation, naming the setting', () => {
    const garbage = path.join(dir, 'garbage.pem');
    writeFileSync(garbage, 'not a key');
    expect(() =>
      createConfiguredSender({
        config: config({ dkim: { domain: 'clinic.example', selector: 's', keyFile: garbage } }),
        resolver: resolverWith([]),
        store: fakeStore(),
        source: source(),
        logger: silentLogger(),
      }),
    ).toThrow(/^tlsrpt\.dkim\.keyFile .*garbage\.pem: not a PEM private key/);
  });

  it.each([
    ['no record (NXDOMAIN)', new DnsError('nxdomain', 'TXT _smtp._tls.example.org', 'ENOTFOUND'), { status: 'no-record' }],
    ['no TXT at all (NODATA)', new DnsError('nodata', 'TXT _smtp._tls.example.org', 'ENODATA'), { status: 'no-record' }],
    ['a SERVFAIL', new DnsError('temporary', 'TXT _smtp._tls.example.org', 'ESERVFAIL'), { status: 'failed', retryable: true }],
    ['only other TXT records', ['v=spf1 -all'], { status: 'no-record' }],
    ['an invalid record', ['v=TLSRPTv1; rua=ftp://x.example.org/'], { status: 'invalid-record' }],
    ['two records', ['v=TLSRPTv1; rua=mailto:a@example.org', 'v=TLSRPTv1; rua=mailto:b@example.org'], { status: 'invalid-record' }],
  ])('%s: no report is built or sent', async (_what, answer, expected) => {
    const store = fakeStore();
    const built: string[] = [];
    const sender = createReportSender({ config: config(), resolver: resolverWith(answer), store, source: source(built), signer: null, logger: silentLogger() });
    expect(await sender.send('example.org', DAY)).toMatchObject(expected);
    expect(built).toEqual([]);
    expect(store.queued).toHaveLength(0);
  });

  it('nothing counted: nothing to report', async () => {
    const sender = createReportSender({
      config: config(),
      resolver: resolverWith(['v=TLSRPTv1; rua=mailto:a@example.org']),
      store: fakeStore(),
      source: { domains: async () => [], build: async () => null },
      signer: null,
      logger: silentLogger(),
    });
    expect(await sender.send('example.org', DAY)).toMatchObject({ status: 'nothing-to-report' });
  });

  test('report ids are unique per send and name the day and the submitter', () => {
    const a = newReportIds(DAY, 'clinic.example');
    const b = newReportIds(DAY, 'clinic.example');
    expect(a.reportId).toMatch(/^20261129\.[0-9a-f]{16}@clinic\.example$/);
    expect(a.reportId).not.toBe(b.reportId);
    expect(a.reportId).toContain(a.uniqueId);
  });
});
