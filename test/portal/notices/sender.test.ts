import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { simpleParser } from 'mailparser';
import { dkimVerify } from 'mailauth';
import { parseConfig } from '../../../src/config/load';
import { silentLogger } from '../../../src/log/logger';
import { DkimKeyError, loadDkimSigner } from '../../../src/mail/dkim';
import { createNoticeSender, type Notice } from '../../../src/portal/notices';
import type { HeaderFacts, MessageRecord, NewMessage } from '../../../src/store/types';

/** Building, signing and queueing notices, without sockets: a fake store's enqueue keeps what it was given. */

const NOW = Date.UTC(2026, 10, 29, 12, 0, 0);
const CANARY = 'CANARY-Okapi-5512';
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-notices-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function config(portal: Record<string, unknown> = {}) {
  return parseConfig(
    {
      hostname: 'relay.clinic.example',
      listeners: [{ name: 'submission', port: 0, tls: 'starttls', auth: 'required' }],
      portal: { organisation: 'Riverside Clinic', publicUrl: 'https://portal.clinic.example', ...portal },
    },
    {},
    '/tmp',
  );
}

function fakeStore() {
  const queued: Array<{ message: NewMessage; raw: Buffer; headers: HeaderFacts | undefined }> = [];
  return {
    queued,
    store: {
      async enqueue(message: NewMessage, body: Readable, headers?: HeaderFacts): Promise<MessageRecord> {
        const parts: Buffer[] = [];
        for await (const chunk of body) parts.push(chunk as Buffer);
        queued.push({ message, raw: Buffer.concat(parts), headers });
        return { id: `Q${queued.length}` } as MessageRecord;
      },
    },
  };
}

function writeKey(type: 'rsa' | 'ed25519'): { file: string; dnsTxt: string } {
  const pair = type === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ed25519');
  const file = path.join(dir, `${type}.pem`);
  writeFileSync(file, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  const spki = pair.publicKey.export({ type: 'spki', format: 'der' });
  // Ed25519 DKIM records carry the raw 32-byte key (RFC 8463); RSA ones the SubjectPublicKeyInfo.
  const p = (type === 'ed25519' ? spki.subarray(spki.length - 32) : spki).toString('base64');
  return { file, dnsTxt: `v=DKIM1; k=${type}; p=${p}` };
}

const resolverFor = (name: string, txt: string) => async (query: string, rrtype: string) => {
  if (rrtype === 'TXT' && query === name) return [[txt]];
  throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
};

const link: Notice = { kind: 'portal-link', itemId: 'item-1', to: 'patient@example.test', link: 'https://portal.clinic.example/m/tok', expiresAt: NOW + 30 * 86_400_000, originalSubject: CANARY };

describe('createNoticeSender', () => {
  it('queues the notice from portal@<hostname> to the one recipient, marked as a notice, with an internal client', async () => {
    const { store, queued } = fakeStore();
    const id = await createNoticeSender({ config: config(), store, logger: silentLogger(), now: () => NOW }).send(link);
    expect(id).toBe('Q1');
    const [{ message, raw, headers }] = queued as [(typeof queued)[number]];
    expect(message).toMatchObject({
      from: 'portal@relay.clinic.example',
      recipients: [{ address: 'patient@example.test' }],
      params: { notice: { itemId: 'item-1', kind: 'portal-link' } },
      receivedAt: NOW,
    });
    expect(message.client).toMatchObject({ ip: '127.0.0.1', listener: 'portal' });
    expect(headers).toMatchObject({ from: 'portal@relay.clinic.example', date: new Date(NOW).toISOString() });
    expect(headers!.messageId).toMatch(/^<notice\.portal-link\.[0-9a-f]+@relay\.clinic\.example>$/);

    const parsed = await simpleParser(raw);
    expect(parsed.headers.get('auto-submitted')).toBe('auto-generated');
    expect(parsed.messageId).toBe(headers!.messageId);
    expect(parsed.from?.text).toBe('portal@relay.clinic.example');
    expect(parsed.date?.getTime()).toBe(NOW);
    expect(parsed.subject).toBe('Secure message from Riverside Clinic');
    expect(raw.toString()).toMatch(/Content-Type: multipart\/alternative/);
    expect(parsed.text).toContain('https://portal.clinic.example/m/tok');
    expect(parsed.html).toContain('<h1');
    expect([...parsed.headers.keys()].filter((k) => k.startsWith('list-'))).toEqual([]);
    expect(parsed.headers.has('dkim-signature')).toBe(false);
    expect(raw.toString()).not.toContain(CANARY);
  });

  it('uses portal.noticeFrom when set; a sender notice has no item id', async () => {
    const { store, queued } = fakeStore();
    await createNoticeSender({ config: config({ noticeFrom: 'secure@clinic.example' }), store, logger: silentLogger(), now: () => NOW }).send({
      kind: 'unread-at-expiry',
      to: 'doctor@clinic.example',
      recipients: ['patient@example.test'],
      queueId: 'Q9',
    });
    expect(queued[0]!.message).toMatchObject({ from: 'secure@clinic.example', recipients: [{ address: 'doctor@clinic.example' }], params: { notice: { kind: 'unread-at-expiry' } } });
    expect(queued[0]!.message.params.notice).not.toHaveProperty('itemId');
  });

  it.each(['rsa', 'ed25519'] as const)('DKIM-signs with a %s key; mailauth verifies it (pass), and a changed body does not', async (type) => {
    const key = writeKey(type);
    const { store, queued } = fakeStore();
    const cfg = config({ dkim: { domain: 'clinic.example', selector: 'notices', keyFile: key.file }, noticeFrom: 'portal@clinic.example' });
    await createNoticeSender({ config: cfg, store, logger: silentLogger(), now: () => NOW }).send(link);
    const raw = queued[0]!.raw;
    expect(raw.toString()).toMatch(/^DKIM-Signature: v=1; a=(rsa|ed25519)-sha256; c=relaxed\/relaxed; d=clinic\.example;/);
    const resolver = resolverFor('notices._domainkey.clinic.example', key.dnsTxt);
    const verified = await dkimVerify(raw, { resolver, curTime: NOW + 1000 });
    expect(verified.results.map((r) => r.status.result)).toEqual(['pass']);
    const tampered = Buffer.from(raw.toString().replace('Riverside Clinic has sent you', 'Riverside Clinic has mailed you'));
    expect((await dkimVerify(tampered, { resolver, curTime: NOW + 1000 })).results[0]!.status.result).not.toBe('pass');
  });

  it('an unreadable or unusable DKIM key is a clear error at creation', () => {
    const missing = path.join(dir, 'missing.pem');
    expect(() => createNoticeSender({ config: config({ dkim: { domain: 'clinic.example', selector: 's', keyFile: missing } }), store: fakeStore().store, logger: silentLogger() })).toThrow(
      new RegExp(`portal\\.dkim\\.keyFile ${missing.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: cannot read`),
    );
    const garbage = path.join(dir, 'garbage.pem');
    writeFileSync(garbage, 'not a key');
    expect(() => loadDkimSigner({ domain: 'clinic.example', selector: 's', keyFile: garbage })).toThrow(DkimKeyError);
    const ec = path.join(dir, 'ec.pem');
    writeFileSync(ec, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
    expect(() => loadDkimSigner({ domain: 'clinic.example', selector: 's', keyFile: ec })).toThrow(/RSA or Ed25519/);
    expect(loadDkimSigner(null)).toBeNull();
  });
});

describe('recipient-not-told: an RFC 3464 DSN', () => {
  const notTold: Extract<Notice, { kind: 'recipient-not-told' }> = {
    kind: 'recipient-not-told',
    itemId: 'item-1',
    to: 'doctor@clinic.example',
    recipient: 'patient@example.test',
    queueId: 'Q77',
    reason: 'rcpt-550',
    messageId: '<m1@clinic.example>',
    arrivalAt: NOW - 3_600_000,
    envid: 'ENV-42',
  };

  async function sent(notice: Notice, portal: Record<string, unknown> = {}) {
    const { store, queued } = fakeStore();
    await createNoticeSender({ config: config(portal), store, logger: silentLogger(), now: () => NOW }).send(notice);
    const [{ message, raw }] = queued as [(typeof queued)[number]];
    const parsed = await simpleParser(raw);
    // mailparser shows message/delivery-status inline with the text, so read that part from the raw MIME.
    const status = /Content-Type: message\/delivery-status\r\n(?:[^\r\n]+\r\n)*\r\n([\s\S]*?)\r\n--/.exec(raw.toString())?.[1] ?? '';
    return { message, raw, parsed, status };
  }

  it('comes from the null sender, marked as a notice for its item', async () => {
    const { message } = await sent(notTold);
    expect(message).toMatchObject({ from: '', recipients: [{ address: 'doctor@clinic.example' }], params: { notice: { itemId: 'item-1', kind: 'recipient-not-told' } } });
  });

  it('is multipart/report with the human text and the delivery-status fields, and no original message part', async () => {
    const { raw, parsed, status } = await sent(notTold);
    expect(parsed.headers.get('content-type')).toMatchObject({ value: 'multipart/report', params: { 'report-type': 'delivery-status' } });
    expect(parsed.headers.get('auto-submitted')).toBe('auto-replied');
    expect(parsed.from?.text).toBe('portal@relay.clinic.example');
    expect(parsed.text).toContain('patient@example.test could not be delivered (rcpt-550)');
    expect(parsed.text).toContain('Queue id: Q77. Message-ID: <m1@clinic.example>');
    expect(parsed.html).toContain('<h1');
    const fields = status.split(/\r?\n/);
    expect(fields).toEqual(
      expect.arrayContaining([
        'Reporting-MTA: dns; relay.clinic.example',
        'Original-Envelope-Id: ENV-42',
        `Arrival-Date: ${new Date(NOW - 3_600_000).toUTCString()}`,
        'Final-Recipient: rfc822; patient@example.test',
        'Action: failed',
        'Status: 5.0.0',
        'Diagnostic-Code: X-Sealgate; rcpt-550',
      ]),
    );
    expect(parsed.attachments).toEqual([]);
    expect(raw.toString().match(/^Content-Type: /gm)).toHaveLength(5); // report, alternative, text, html, delivery-status
    expect(raw.toString()).not.toMatch(/message\/rfc822|text\/rfc822-headers/i);
  });

  it('carries the bounce status and reply when known; without ENVID or arrival those fields are left out', async () => {
    const { arrivalAt: _a, envid: _e, ...bare } = notTold;
    const { status } = await sent({ ...bare, status: '5.1.1', diagnostic: '550 5.1.1 <patient@example.test>: no such user\r\n' });
    expect(status).toContain('Status: 5.1.1');
    expect(status).toContain('Diagnostic-Code: smtp; 550 5.1.1 <patient@example.test>: no such user');
    expect(status).not.toContain('Original-Envelope-Id');
    expect(status).not.toContain('Arrival-Date');
    const odd = await sent({ ...bare, status: '4.4.1' });
    expect(odd.status).toContain('Status: 5.0.0');
  });

  it('never carries the original subject, even with includeOriginalSubject', async () => {
    const { raw } = await sent(notTold, { includeOriginalSubject: true });
    expect(raw.toString()).not.toContain(CANARY);
    expect(raw.toString()).not.toContain('Okapi');
  });

  it('is DKIM-signed when a key is configured', async () => {
    const key = writeKey('ed25519');
    const { raw } = await sent(notTold, { dkim: { domain: 'clinic.example', selector: 'notices', keyFile: key.file }, noticeFrom: 'portal@clinic.example' });
    const verified = await dkimVerify(raw, { resolver: resolverFor('notices._domainkey.clinic.example', key.dnsTxt), curTime: NOW + 1000 });
    expect(verified.results.map((r) => r.status.result)).toEqual(['pass']);
  });
});
