import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { dkimVerify } from 'mailauth';
import { simpleParser } from 'mailparser';
import { parseConfig } from '../../src/config/load';
import { loadDkimSigner } from '../../src/mail/dkim';
import { deliveryMode } from '../../src/outcome';
import { createReportMailer, reportMailFrom } from '../../src/report/mail';
import { lastCompletePeriod, type GeneratedReport } from '../../src/report/schedule';
import type { HeaderFacts, MessageRecord, NewMessage } from '../../src/store/types';

/** The scheduled report's mail: composed with MailComposer, DKIM-signed when reports.dkim is set, queued compliant-only. */

const NOW = Date.UTC(2026, 10, 30, 6, 0, 0);
let dir: string;
let keyFile: string;
let dkimTxt: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-report-mail-'));
  const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
  keyFile = path.join(dir, 'dkim.pem');
  writeFileSync(keyFile, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  dkimTxt = `v=DKIM1; k=rsa; p=${pair.publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}`;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const config = (reports: Record<string, unknown> = {}) =>
  parseConfig({ hostname: 'relay.clinic.example', listeners: [{ name: 'submission', port: 0, tls: 'starttls', auth: 'required' }], reports: { schedule: 'daily', ...reports } }, {}, dir);

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
  };
}

const report: GeneratedReport = {
  schedule: 'daily',
  period: lastCompletePeriod('daily', NOW),
  files: [
    { name: 'sealgate-report-2026-11-29_2026-11-29.html', format: 'html', size: 15, sha256: 'a'.repeat(64), content: Buffer.from('<html></html>\r\n') },
    { name: 'sealgate-report-2026-11-29_2026-11-29.pdf', format: 'pdf', size: 9, sha256: 'b'.repeat(64), content: Buffer.from('%PDF-1.7\n') },
  ],
};

describe('report mail', () => {
  it('the From defaults to reports@<hostname>', () => {
    expect(reportMailFrom(config())).toBe('reports@relay.clinic.example');
    expect(reportMailFrom(config({ from: 'compliance-bot@clinic.example' }))).toBe('compliance-bot@clinic.example');
  });

  it('one message to every mailTo address, marked compliant-only, with each file attached and fingerprinted in the text', async () => {
    const store = fakeStore();
    const mail = createReportMailer({ config: config({ mailTo: ['officer@Clinic.Example', 'audit@partner.example'] }), store, signer: null, now: () => NOW });
    expect(await mail(report)).toBe('Q1');
    const [{ message, raw, headers }] = store.queued as [(typeof store.queued)[number]];
    expect(message).toMatchObject({
      from: 'reports@relay.clinic.example',
      recipients: [{ address: 'officer@clinic.example' }, { address: 'audit@partner.example' }],
      params: { compliantOnly: { kind: 'report' } },
      receivedAt: NOW,
    });
    expect(message.params.notice).toBeUndefined();
    expect(deliveryMode(message.params)).toBe('compliant-only');
    expect(headers).toMatchObject({ from: 'reports@relay.clinic.example' });
    expect(headers!.tlsRequired).toBeUndefined();
    expect(raw.toString()).not.toMatch(/^TLS-Required:/im);
    expect(raw.toString()).not.toMatch(/^DKIM-Signature:/im);
    const parsed = await simpleParser(raw);
    expect(parsed.subject).toBe('Sealgate compliance report 2026-11-29 (relay.clinic.example)');
    expect(parsed.headers.get('auto-submitted')).toBe('auto-generated');
    expect(parsed.text).toContain(`sealgate-report-2026-11-29_2026-11-29.html  15 bytes  ${'a'.repeat(64)}`);
    expect(parsed.attachments.map((a) => [a.filename, a.contentType, a.content.toString()])).toEqual([
      ['sealgate-report-2026-11-29_2026-11-29.html', 'text/html', '<html></html>\r\n'],
      ['sealgate-report-2026-11-29_2026-11-29.pdf', 'application/pdf', '%PDF-1.7\n'],
    ]);
  });

  it('DKIM-signed with reports.dkim (relaxed/relaxed, no l=), and the signature verifies', async () => {
    const store = fakeStore();
    const cfg = config({ mailTo: ['officer@clinic.example'], dkim: { domain: 'clinic.example', selector: 'reports', keyFile } });
    const signer = loadDkimSigner(cfg.reports.dkim, 'reports.dkim');
    await createReportMailer({ config: cfg, store, signer, now: () => NOW })(report);
    const raw = store.queued[0]!.raw;
    const signature = /^DKIM-Signature:[^]*?(?=\r\n\S)/.exec(raw.toString())![0];
    expect(signature).toMatch(/d=clinic\.example/);
    expect(signature).not.toMatch(/[;\s]l=/);
    const resolver = async (name: string, type: string) => {
      if (type === 'TXT' && name === 'reports._domainkey.clinic.example') return [[dkimTxt]];
      throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
    };
    const verified = await dkimVerify(raw, { resolver, curTime: NOW + 1000 });
    expect(verified.results.map((r) => r.status.result)).toEqual(['pass']);
  });
});
