import { rmSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type tls from 'node:tls';
import { RawSmtpClient } from '../support/smtp-client';
import { eventually, HOSTNAME, PASSWORD, RESTRICTED_USER, startTestInbound, USER, type TestInbound } from './harness';

/** Protocol edge cases over raw sockets against the real inbound server. */

function plainToken(user: string, password: string): string {
  return Buffer.from(`\0${user}\0${password}`).toString('base64');
}

async function connectPlain(t: TestInbound, listener: string, localAddress?: string): Promise<RawSmtpClient> {
  const client = await RawSmtpClient.connect(t.port(listener), localAddress ? { localAddress } : {});
  expect(client.greeting.code).toBe(220);
  expect((await client.command('EHLO client.test')).code).toBe(250);
  return client;
}

/** Connect, STARTTLS, EHLO again and (optionally) AUTH. */
async function connectTls(t: TestInbound, listener: string, opts: { auth?: string; localAddress?: string } = {}): Promise<RawSmtpClient> {
  const client = await connectPlain(t, listener, opts.localAddress);
  const started = await client.startTls({ ca: [t.cert], servername: HOSTNAME });
  expect(started.code).toBe(220);
  expect((await client.command('EHLO client.test')).code).toBe(250);
  if (opts.auth) expect((await client.command(`AUTH PLAIN ${plainToken(opts.auth, PASSWORD)}`)).code).toBe(235);
  return client;
}

async function sendData(client: RawSmtpClient, data: string | Buffer): Promise<{ code: number; text: string }> {
  const go = await client.command('DATA');
  expect(go.code).toBe(354);
  client.write(data);
  client.write('\r\n.\r\n');
  return client.readReply();
}

describe('inbound protocol', () => {
  let t: TestInbound;
  const clients: RawSmtpClient[] = [];
  const track = (c: RawSmtpClient): RawSmtpClient => (clients.push(c), c);

  beforeAll(async () => {
    t = await startTestInbound({
      listeners: [
        { name: 'submission', host: '127.0.0.1', port: 0, tls: 'starttls', auth: 'required' },
        { name: 'submissions', host: '127.0.0.1', port: 0, tls: 'implicit', auth: 'required' },
        { name: 'smarthost', host: '127.0.0.1', port: 0, tls: 'starttls', auth: 'optional', trustedNetworks: ['127.0.0.1/32'] },
      ],
      limits: { maxMessageSize: 64 * 1024, maxLineLength: 1000, maxRecipients: 5, maxRecipientDomains: 3, maxBadCommands: 5 },
      auth: { maxFailures: 2 },
    });
  });
  afterEach(() => {
    while (clients.length) clients.pop()!.close();
  });
  afterAll(async () => {
    await t.close();
  });

  test('banner and EHLO name are the configured hostname', async () => {
    const client = track(await RawSmtpClient.connect(t.port('submission')));
    expect(client.greeting.lines[0]).toMatch(new RegExp(`^220 ${HOSTNAME} ESMTP`));
    expect((await client.command('EHLO client.test')).lines[0]).toMatch(new RegExp(`^250-${HOSTNAME} `));
  });

  test('MAIL before STARTTLS gets 530 and AUTH is neither offered nor accepted before TLS', async () => {
    for (const listener of ['submission', 'smarthost']) {
      const client = track(await RawSmtpClient.connect(t.port(listener)));
      const ehlo = await client.command('EHLO client.test');
      expect(ehlo.text).toContain('STARTTLS');
      expect(ehlo.text).not.toMatch(/AUTH/);
      const mail = await client.command('MAIL FROM:<a@sender.example>');
      expect(mail.lines[0]).toBe('530 5.7.0 Must issue a STARTTLS command first');
      const auth = await client.command(`AUTH PLAIN ${plainToken(USER, PASSWORD)}`);
      expect(auth.lines[0]).toBe('530 5.7.0 Must issue a STARTTLS command first');
    }
    expect(t.logs.some((l) => l.event === 'command-rejected' && l.reason === 'tls-required')).toBe(true);
  });

  test('after STARTTLS, AUTH PLAIN and LOGIN are offered and STARTTLS no longer is', async () => {
    const client = track(await connectPlain(t, 'submission'));
    await client.startTls({ ca: [t.cert], servername: HOSTNAME });
    const ehlo = await client.command('EHLO client.test');
    expect(ehlo.text).toContain('AUTH PLAIN LOGIN');
    expect(ehlo.text).not.toContain('STARTTLS');
    expect(ehlo.text).toContain('SIZE 65536');
    expect(client.tlsSocket?.getProtocol()).toMatch(/^TLSv1\.[23]$/);
  });

  test('a TLS 1.1-only client cannot complete a handshake (STARTTLS and implicit TLS)', async () => {
    const legacy: tls.ConnectionOptions = {
      ca: [t.cert],
      servername: HOSTNAME,
      minVersion: 'TLSv1',
      maxVersion: 'TLSv1.1',
      ciphers: 'DEFAULT@SECLEVEL=0',
    };
    const client = track(await connectPlain(t, 'submission'));
    await expect(client.startTls(legacy)).rejects.toThrow(/protocol version|unsupported protocol|handshake failure/i);
    await expect(RawSmtpClient.connect(t.port('submissions'), { tls: legacy })).rejects.toThrow(/protocol version|unsupported protocol|handshake failure/i);
    await eventually(() => t.logs.some((l) => l.event === 'connection-error' && l.ip === '127.0.0.1'));
    // The server survives failed handshakes and keeps serving.
    const ok = track(await connectTls(t, 'submission', { auth: USER }));
    expect(ok.tlsSocket?.getProtocol()).toMatch(/^TLSv1\.[23]$/);
  });

  test('a TLS 1.3 client offering only ChaCha20-Poly1305 (not NIST-approved) fails', async () => {
    const chacha: tls.ConnectionOptions = {
      ca: [t.cert],
      servername: HOSTNAME,
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
      ciphers: 'TLS_CHACHA20_POLY1305_SHA256',
    };
    const client = track(await connectPlain(t, 'submission'));
    await expect(client.startTls(chacha)).rejects.toThrow(/handshake failure|no shared cipher/i);
    await expect(RawSmtpClient.connect(t.port('submissions'), { tls: chacha })).rejects.toThrow(/handshake failure|no shared cipher/i);
  });

  test('an implicit-TLS session negotiates an approved suite', async () => {
    const client = track(await RawSmtpClient.connect(t.port('submissions'), { tls: { ca: [t.cert], servername: HOSTNAME } }));
    expect(client.greeting.code).toBe(220);
    const cipher = client.tlsSocket!.getCipher();
    expect(['TLS_AES_256_GCM_SHA384', 'TLS_AES_128_GCM_SHA256']).toContain(cipher.standardName);
  });

  test('unknown MAIL and RCPT parameters get 555', async () => {
    const client = track(await connectTls(t, 'submission', { auth: USER }));
    expect((await client.command('MAIL FROM:<a@sender.example> MT-PRIORITY=3')).lines[0]).toMatch(/^555 5\.5\.4 Unsupported MAIL parameter MT-PRIORITY/);
    expect((await client.command('MAIL FROM:<a@sender.example> SIZE=100 BODY=8BITMIME')).code).toBe(250);
    expect((await client.command('RCPT TO:<x@dest.example> FOO=bar')).lines[0]).toMatch(/^555 5\.5\.4 Unsupported RCPT parameter FOO/);
    expect((await client.command('RCPT TO:<x@dest.example> NOTIFY=FAILURE')).code).toBe(250);
  });

  test.each([
    ['source route', '<@relay.example:x@dest.example>', /^553 5\.1\.3 Source routes are not accepted/],
    ['%-hack', '<x%dest.example@relay.example>', /^553 5\.1\.3 The %-hack is not accepted/],
    ['bang path', '<dest.example!x@relay.example>', /^553 5\.1\.3 Bang paths are not accepted/],
    ['address literal', '<x@[192.0.2.1]>', /^553 5\.1\.3 Address literals are not accepted/],
    ['missing domain', '<postmaster>', /^553 5\.1\.3 The address must have a domain/],
  ])('a %s recipient is refused', async (_label, address, expected) => {
    const client = track(await connectTls(t, 'submission', { auth: USER }));
    expect((await client.command('MAIL FROM:<a@sender.example>')).code).toBe(250);
    expect((await client.command(`RCPT TO:${address}`)).lines[0]).toMatch(expected);
  });

  test('a source-routed sender is refused', async () => {
    const client = track(await connectTls(t, 'submission', { auth: USER }));
    expect((await client.command('MAIL FROM:<@relay.example:a@sender.example>')).lines[0]).toMatch(/^553 5\.1\.3 Source routes/);
  });

  test('a client bound to another loopback address is outside the trusted network and refused at RCPT', async () => {
    const outside = track(await connectTls(t, 'smarthost', { localAddress: '127.0.0.2' }));
    expect((await outside.command('MAIL FROM:<app@sender.example>')).code).toBe(250);
    expect((await outside.command('RCPT TO:<x@dest.example>')).lines[0]).toBe('554 5.7.1 Relay access denied');
    const inside = track(await connectTls(t, 'smarthost', { localAddress: '127.0.0.1' }));
    expect((await inside.command('MAIL FROM:<app@sender.example>')).code).toBe(250);
    expect((await inside.command('RCPT TO:<x@dest.example>')).code).toBe(250);
  });

  test('per-user allowed sender domains are checked on the normalised address', async () => {
    const client = track(await connectTls(t, 'submission', { auth: RESTRICTED_USER }));
    expect((await client.command('MAIL FROM:<bob@other.example>')).lines[0]).toBe('553 5.7.1 Sender address not allowed for this user');
    expect((await client.command('MAIL FROM:<bob@ALLOWED.Example>')).code).toBe(250);
  });

  test('more recipient domains than maxRecipientDomains get 452', async () => {
    const client = track(await connectTls(t, 'submission', { auth: USER }));
    expect((await client.command('MAIL FROM:<a@sender.example>')).code).toBe(250);
    for (const domain of ['one.example', 'two.example', 'three.example']) expect((await client.command(`RCPT TO:<x@${domain}>`)).code).toBe(250);
    expect((await client.command('RCPT TO:<y@one.example>')).code).toBe(250);
    expect((await client.command('RCPT TO:<x@four.example>')).lines[0]).toBe('452 4.5.3 Too many recipient domains');
  });

  test('an oversize message gets 552 at the end of DATA and nothing is stored', async () => {
    const before = (await t.store.counts()).messages;
    const client = track(await connectTls(t, 'submission', { auth: USER }));
    expect((await client.command('MAIL FROM:<a@sender.example>')).code).toBe(250);
    expect((await client.command('RCPT TO:<x@dest.example>')).code).toBe(250);
    const line = `${'x'.repeat(998)}\r\n`;
    const reply = await sendData(client, `Subject: big\r\n\r\n${line.repeat(100)}`);
    expect(reply.code).toBe(552);
    expect(reply.text).toMatch(/^5\.3\.4 /);
    expect((await t.store.counts()).messages).toBe(before);
    // The session continues after the refusal.
    expect((await client.command('NOOP')).code).toBe(250);
  });

  test('MAIL with a SIZE over the limit is refused before DATA', async () => {
    const client = track(await connectTls(t, 'submission', { auth: USER }));
    expect((await client.command('MAIL FROM:<a@sender.example> SIZE=10000000')).code).toBe(552);
  });

  test.each([
    ['bare LF', 'Subject: x\r\n\r\nline one\nline two\r\n'],
    ['bare CR', 'Subject: x\r\n\r\nline one\rline two\r\n'],
    ['smuggling sequence', 'Subject: x\r\n\r\nhello\n.\nMAIL FROM:<evil@x.example>\r\n'],
  ])('a message with %s is refused with 550 5.6.0 and nothing is stored', async (_label, data) => {
    const before = (await t.store.counts()).messages;
    const client = track(await connectTls(t, 'submission', { auth: USER }));
    expect((await client.command('MAIL FROM:<a@sender.example>')).code).toBe(250);
    expect((await client.command('RCPT TO:<x@dest.example>')).code).toBe(250);
    const reply = await sendData(client, data);
    expect(reply.code).toBe(550);
    expect(reply.text).toMatch(/^5\.6\.0 /);
    expect((await t.store.counts()).messages).toBe(before);
    expect(t.logs.some((l) => l.event === 'command-rejected' && l.reason === 'bare-newline')).toBe(true);
  });

  test('a line over maxLineLength is refused', async () => {
    const client = track(await connectTls(t, 'submission', { auth: USER }));
    expect((await client.command('MAIL FROM:<a@sender.example>')).code).toBe(250);
    expect((await client.command('RCPT TO:<x@dest.example>')).code).toBe(250);
    const reply = await sendData(client, `Subject: x\r\n\r\n${'y'.repeat(1001)}\r\n`);
    expect(reply.code).toBe(552);
  });

  test('a client that disconnects mid-DATA leaves nothing stored and the server keeps serving', async () => {
    const before = (await t.store.counts()).messages;
    const client = await connectTls(t, 'submission', { auth: USER });
    expect((await client.command('MAIL FROM:<a@sender.example>')).code).toBe(250);
    expect((await client.command('RCPT TO:<x@dest.example>')).code).toBe(250);
    expect((await client.command('DATA')).code).toBe(354);
    client.write('Subject: half\r\n\r\nsome text\r\n');
    client.close();
    await eventually(() => t.logs.some((l) => l.event === 'command-rejected' && l.reason === 'client-aborted'));
    expect((await t.store.counts()).messages).toBe(before);
    const next = track(await connectTls(t, 'submission', { auth: USER }));
    expect((await next.command('NOOP')).code).toBe(250);
  });

  test('AUTH LOGIN works after STARTTLS', async () => {
    const client = track(await connectTls(t, 'submission'));
    expect((await client.command('AUTH LOGIN')).code).toBe(334);
    expect((await client.command(Buffer.from(USER).toString('base64'))).code).toBe(334);
    expect((await client.command(Buffer.from(PASSWORD).toString('base64'))).lines[0]).toMatch(/^235 /);
    expect((await client.command('MAIL FROM:<a@sender.example>')).code).toBe(250);
  });

  test('more than maxRecipients recipients get 452', async () => {
    const client = track(await connectTls(t, 'submission', { auth: USER }));
    expect((await client.command('MAIL FROM:<a@sender.example>')).code).toBe(250);
    for (let i = 0; i < 5; i++) expect((await client.command(`RCPT TO:<r${i}@dest.example>`)).code).toBe(250);
    expect((await client.command('RCPT TO:<r5@dest.example>')).lines[0]).toMatch(/^452 4\.5\.3 /);
  });

  test('repeated failed AUTH closes the connection with 421', async () => {
    const client = track(await connectPlain(t, 'submission'));
    await client.startTls({ ca: [t.cert], servername: HOSTNAME });
    await client.command('EHLO client.test');
    expect((await client.command(`AUTH PLAIN ${plainToken(USER, 'wrong')}`)).lines[0]).toBe('535 5.7.8 Authentication credentials invalid');
    expect((await client.command(`AUTH PLAIN ${plainToken(USER, 'wrong again')}`)).code).toBe(421);
    await client.waitClosed();
  });

  test('junk commands smtp-server refuses itself are logged and count towards maxBadCommands', async () => {
    const client = track(await connectTls(t, 'submission', { auth: USER }));
    for (let i = 0; i < 4; i++) expect((await client.command('FOO bar')).code).toBe(500);
    expect((await client.command('FOO bar')).code).toBe(500);
    expect((await client.readReply()).lines[0]).toBe('421 4.7.0 Too many errors, closing connection');
    await client.waitClosed();
    expect(t.logs.some((l) => l.event === 'command-rejected' && l.reason === 'protocol' && l.code === 500)).toBe(true);
  });

  test('too many refused commands close the connection with 421', async () => {
    const client = track(await connectTls(t, 'submission', { auth: USER }));
    const codes: number[] = [];
    for (let i = 0; i < 5; i++) codes.push((await client.command('MAIL FROM:<a@sender.example> BOGUS=1')).code);
    expect(codes).toEqual([555, 555, 555, 555, 421]);
    await client.waitClosed();
  });
});

describe('inbound limits', () => {
  test('close() stops accepting, tells idle sessions 421 and resolves', async () => {
    const t = await startTestInbound();
    const port = t.port('submission');
    const client = await RawSmtpClient.connect(port);
    try {
      expect(client.greeting.code).toBe(220);
      await t.inbound.close();
      expect((await client.readReply()).code).toBe(421);
      await client.waitClosed();
      await expect(RawSmtpClient.connect(port)).rejects.toThrow(/ECONNREFUSED/);
    } finally {
      client.close();
      await t.close();
    }
  });

  test('per-IP connection cap answers 421 4.7.0 at connect, and frees the slot on close', async () => {
    const t = await startTestInbound({ limits: { maxConnectionsPerIp: 2 } });
    const clients: RawSmtpClient[] = [];
    try {
      clients.push(await RawSmtpClient.connect(t.port('submission')));
      clients.push(await RawSmtpClient.connect(t.port('smarthost')));
      const third = await RawSmtpClient.connect(t.port('submission'));
      clients.push(third);
      expect(third.greeting.lines[0]).toBe('421 4.7.0 Too many connections from your address, try again later');
      await third.waitClosed();
      // Another address still gets in.
      const other = await RawSmtpClient.connect(t.port('submission'), { localAddress: '127.0.0.3' });
      clients.push(other);
      expect(other.greeting.code).toBe(220);
      clients[0]!.close();
      // The slot frees when the server sees the close: retry a bounded number of times.
      let again: RawSmtpClient | undefined;
      for (let i = 0; i < 50; i++) {
        const attempt = await RawSmtpClient.connect(t.port('submission'));
        clients.push(attempt);
        if (attempt.greeting.code === 220) {
          again = attempt;
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(again?.greeting.code).toBe(220);
    } finally {
      for (const c of clients) c.close();
      await t.close();
    }
  });

  test.each(['file', 'lmdb'])('low free disk space answers 452 4.3.1 at MAIL (%s store)', async (backend) => {
    const t = await startTestInbound({ limits: { minFreeDisk: Number.MAX_SAFE_INTEGER }, queue: { backend } });
    expect(t.store.kind).toBe(backend);
    const client = await RawSmtpClient.connect(t.port('smarthost'));
    try {
      await client.command('EHLO client.test');
      await client.startTls({ ca: [t.cert], servername: HOSTNAME });
      await client.command('EHLO client.test');
      expect((await client.command('MAIL FROM:<a@sender.example>')).lines[0]).toBe('452 4.3.1 Insufficient system storage, try again later');
    } finally {
      client.close();
      await t.close();
    }
  });

  test('a store failure is a temporary error (451), never 250 or 5xx', async () => {
    // The file store, whose temp folder can be broken from outside mid-body (the reply mapping is the same for every store).
    const t = await startTestInbound({ queue: { backend: 'file' } });
    const tmp = path.join(t.config.queue.path, 'tmp');
    const client = await RawSmtpClient.connect(t.port('smarthost'));
    try {
      await client.command('EHLO client.test');
      await client.startTls({ ca: [t.cert], servername: HOSTNAME });
      await client.command('EHLO client.test');
      expect((await client.command('MAIL FROM:<a@sender.example>')).code).toBe(250);
      expect((await client.command('RCPT TO:<x@dest.example>')).code).toBe(250);
      // Break the spool under the store: its temp folder becomes a plain file.
      rmSync(tmp, { recursive: true, force: true });
      writeFileSync(tmp, 'not a directory');
      // Large enough that the store fails while the client is still sending: the rest must be drained.
      const reply = await sendData(client, `Subject: x\r\n\r\n${`${'x'.repeat(998)}\r\n`.repeat(2000)}`);
      expect(reply.code).toBe(451);
      expect(reply.text).toMatch(/^4\.3\.0 /);
      expect((await t.store.counts()).messages).toBe(0);
    } finally {
      client.close();
      rmSync(tmp, { force: true });
      mkdirSync(tmp, { recursive: true });
      await t.close();
    }
  });

  test('a DATA phase slower than minDataRate after the grace time is cut off with 421', async () => {
    const t = await startTestInbound({ limits: { dataGrace: 200, minDataRate: 10_000_000 } });
    const client = await RawSmtpClient.connect(t.port('smarthost'));
    try {
      await client.command('EHLO client.test');
      await client.startTls({ ca: [t.cert], servername: HOSTNAME });
      await client.command('EHLO client.test');
      expect((await client.command('MAIL FROM:<a@sender.example>')).code).toBe(250);
      expect((await client.command('RCPT TO:<x@dest.example>')).code).toBe(250);
      expect((await client.command('DATA')).code).toBe(354);
      client.write('Subject: slow\r\n\r\n');
      const reply = await client.readReply();
      expect(reply.lines[0]).toBe('421 4.4.2 Data rate too low, closing connection');
      await client.waitClosed();
      expect((await t.store.counts()).messages).toBe(0);
    } finally {
      client.close();
      await t.close();
    }
  });

  test('the session deadline closes a session with 421 however active it is', async () => {
    const t = await startTestInbound({ limits: { sessionDeadline: 300 } });
    const client = await RawSmtpClient.connect(t.port('smarthost'));
    try {
      const reply = await client.readReply();
      expect(reply.lines[0]).toBe('421 4.4.2 Session time limit exceeded, closing connection');
      await client.waitClosed();
    } finally {
      client.close();
      await t.close();
    }
  });
});
