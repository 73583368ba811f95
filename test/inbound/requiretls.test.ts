import { RawSmtpClient } from '../support/smtp-client';
import { HOSTNAME, startTestInbound, type TestInbound } from './harness';

/**
 * RFC 8689 on the way in, over raw sockets against the real inbound server: REQUIRETLS is offered in EHLO
 * only on a TLS session, and `MAIL FROM:<…> REQUIRETLS` is taken only there, on every listener, including
 * one that lets trusted networks send in plaintext.
 */

const REFUSAL = '530 5.7.10 REQUIRETLS needs a TLS session: issue STARTTLS first';

describe('inbound REQUIRETLS', () => {
  let t: TestInbound;
  const clients: RawSmtpClient[] = [];
  const track = (c: RawSmtpClient): RawSmtpClient => (clients.push(c), c);

  beforeAll(async () => {
    t = await startTestInbound({
      listeners: [
        { name: 'submission', host: '127.0.0.1', port: 0, tls: 'starttls', auth: 'required' },
        { name: 'submissions', host: '127.0.0.1', port: 0, tls: 'implicit', auth: 'required' },
        // A trusted-network listener that allows plaintext MAIL (requireTls off).
        { name: 'plainok', host: '127.0.0.1', port: 0, tls: 'starttls', auth: 'optional', trustedNetworks: ['127.0.0.0/8'], requireTls: false },
      ],
    });
  });
  afterEach(() => {
    while (clients.length) clients.pop()!.close();
  });
  afterAll(async () => {
    await t.close();
  });

  const keywords = (text: string): string[] => text.split('\n').map((line) => line.split(' ')[0]!.toUpperCase());

  test('EHLO: no REQUIRETLS in plaintext (also where plaintext MAIL is allowed), REQUIRETLS after STARTTLS and on implicit TLS', async () => {
    for (const listener of ['submission', 'plainok']) {
      const client = track(await RawSmtpClient.connect(t.port(listener)));
      const before = await client.command('EHLO client.test');
      expect(keywords(before.text)).toContain('STARTTLS');
      expect(keywords(before.text)).not.toContain('REQUIRETLS');
      expect((await client.startTls({ ca: [t.cert], servername: HOSTNAME })).code).toBe(220);
      const after = await client.command('EHLO client.test');
      expect(keywords(after.text)).toContain('REQUIRETLS');
    }
    const implicit = track(await RawSmtpClient.connect(t.port('submissions'), { tls: { ca: [t.cert], servername: HOSTNAME } }));
    expect(keywords((await implicit.command('EHLO client.test')).text)).toContain('REQUIRETLS');
  });

  test('MAIL FROM with REQUIRETLS in plaintext: 530 5.7.10 on every listener; plain MAIL on the plaintext listener still works', async () => {
    for (const listener of ['submission', 'plainok']) {
      const client = track(await RawSmtpClient.connect(t.port(listener)));
      await client.command('EHLO client.test');
      expect((await client.command('MAIL FROM:<clinic@sender.example> REQUIRETLS')).lines).toEqual([REFUSAL]);
      expect((await client.command('MAIL FROM:<> SIZE=100 REQUIRETLS')).lines).toEqual([REFUSAL]);
    }
    const plain = track(await RawSmtpClient.connect(t.port('plainok')));
    await plain.command('EHLO client.test');
    expect((await plain.command('MAIL FROM:<clinic@sender.example>')).code).toBe(250);
    expect(t.logs.some((l) => l.event === 'command-rejected' && l.reason === 'requiretls-without-tls' && l.code === 530)).toBe(true);
  });

  test('MAIL FROM with REQUIRETLS over STARTTLS is accepted and the message is queued with it', async () => {
    const client = track(await RawSmtpClient.connect(t.port('plainok')));
    await client.command('EHLO client.test');
    await client.startTls({ ca: [t.cert], servername: HOSTNAME });
    await client.command('EHLO client.test');
    expect((await client.command('MAIL FROM:<clinic@sender.example> REQUIRETLS')).code).toBe(250);
    expect((await client.command('RCPT TO:<patient@dest.example>')).code).toBe(250);
    expect((await client.command('DATA')).code).toBe(354);
    client.write('From: clinic@sender.example\r\nSubject: r\r\n\r\nbody\r\n.\r\n');
    const done = await client.readReply();
    expect(done.code).toBe(250);
    const id = /queued as (\S+)/.exec(done.text)![1]!;
    const message = await t.store.getMessage(id);
    expect(message?.params.requireTls).toBe(true);
  });
});
