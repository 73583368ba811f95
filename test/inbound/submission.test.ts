import nodemailer from 'nodemailer';
import { PASSWORD, readBody, splitReceived, startTestInbound, USER, HOSTNAME, type TestInbound } from './harness';

/** Submissions with nodemailer against the real inbound server and the file store. */

function rawMessage(subject: string, bodyLines = 3): string {
  const lines = [
    'From: Alice <alice@sender.example>',
    'To: bob@dest.example',
    `Subject: ${subject}`,
    'Message-ID: <test-1@sender.example>',
    'Date: Fri, 27 Nov 2026 12:00:00 +0000',
    'TLS-Required: No',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    ...Array.from({ length: bodyLines }, (_, i) => `line ${i}: .leading dot and trailing spaces   `),
    '.',
    '..double',
  ];
  return `${lines.join('\r\n')}\r\n`;
}

function transport(t: TestInbound, listener: string, opts: { secure?: boolean; auth?: boolean } = {}) {
  return nodemailer.createTransport({
    host: '127.0.0.1',
    port: t.port(listener),
    secure: opts.secure ?? false,
    requireTLS: !(opts.secure ?? false),
    ...(opts.auth === false ? {} : { auth: { user: USER, pass: PASSWORD } }),
    tls: { ca: [t.cert], servername: HOSTNAME },
    name: 'client.test',
  });
}

describe('inbound submission with nodemailer', () => {
  let t: TestInbound;
  beforeAll(async () => {
    t = await startTestInbound();
  });
  afterAll(async () => {
    await t.close();
  });

  test.each([
    ['STARTTLS', 'submission', false],
    ['implicit TLS', 'submissions', true],
  ])('%s with AUTH: 250 carries the queue id and the stored body is byte-identical', async (_label, listener, secure) => {
    const raw = rawMessage(`hello over ${listener}`);
    const info = await transport(t, listener, { secure }).sendMail({
      envelope: { from: 'alice@sender.example', to: ['bob@Dest.Example', 'carol@other.example'] },
      raw,
    });
    const match = /^250 2\.0\.0 Ok: queued as (\S+)$/.exec(info.response);
    expect(match).not.toBeNull();
    const id = match![1]!;

    const record = await t.store.getMessage(id);
    expect(record).toBeDefined();
    expect(record!.from).toBe('alice@sender.example');
    expect(record!.jobs.map((j) => j.domain).sort()).toEqual(['dest.example', 'other.example']);
    expect(record!.jobs.flatMap((j) => j.recipients.map((r) => r.address)).sort()).toEqual(['bob@dest.example', 'carol@other.example']);
    expect(record!.client).toMatchObject({ ip: '127.0.0.1', user: USER, listener, helo: 'client.test' });
    expect(record!.client.tls?.protocol).toMatch(/^TLSv1\.[23]$/);
    expect(record!.headers).toEqual({
      messageId: '<test-1@sender.example>',
      from: 'Alice <alice@sender.example>',
      date: '2026-11-27T12:00:00.000Z',
      tlsRequired: 'No',
    });

    const body = await readBody(t.store, id);
    const { received, rest } = splitReceived(body);
    expect(rest.equals(Buffer.from(raw, 'utf8'))).toBe(true);
    expect(received).toContain(`by ${HOSTNAME} (Sealgate) with ESMTPSA`);
    expect(received).toContain('from client.test ([127.0.0.1])');
    expect(record!.size).toBe(body.length);

    const accepted = t.logs.find((l) => l.event === 'message-accepted' && l.queueId === id);
    expect(accepted).toMatchObject({ ip: '127.0.0.1', listener, user: USER, from: 'alice@sender.example', recipients: 2 });
    expect(JSON.stringify(t.logs)).not.toContain('hello over');
    expect(JSON.stringify(t.logs)).not.toContain(PASSWORD);
  });

  test('a trusted network relays without AUTH', async () => {
    const info = await transport(t, 'smarthost', { auth: false }).sendMail({
      envelope: { from: 'app@sender.example', to: ['x@dest.example'] },
      raw: rawMessage('trusted'),
    });
    expect(info.response).toMatch(/^250 2\.0\.0 Ok: queued as /);
  });

  test('an untrusted client without AUTH is refused at RCPT (no open relay) and nothing is stored', async () => {
    const before = await t.store.counts();
    await expect(transport(t, 'untrusted', { auth: false }).sendMail({ envelope: { from: 'app@sender.example', to: ['x@dest.example'] }, raw: rawMessage('relay') })).rejects.toMatchObject({
      responseCode: 554,
      response: expect.stringContaining('5.7.1 Relay access denied'),
    });
    expect((await t.store.counts()).messages).toBe(before.messages);
    expect(t.logs.some((l) => l.event === 'command-rejected' && l.command === 'RCPT' && l.reason === 'relay-denied-untrusted-unauthenticated')).toBe(true);
  });

  test('the same untrusted listener relays once the client authenticates', async () => {
    const info = await transport(t, 'untrusted').sendMail({ envelope: { from: 'app@sender.example', to: ['x@dest.example'] }, raw: rawMessage('auth') });
    expect(info.response).toMatch(/^250 2\.0\.0 Ok: queued as /);
  });

  test('an AUTH-required listener refuses MAIL without AUTH with 530', async () => {
    await expect(transport(t, 'submission', { auth: false }).sendMail({ envelope: { from: 'a@sender.example', to: ['x@dest.example'] }, raw: rawMessage('noauth') })).rejects.toMatchObject({
      responseCode: 530,
      response: '530 5.7.0 Authentication required',
    });
  });

  test('wrong password gets 535', async () => {
    const wrong = nodemailer.createTransport({
      host: '127.0.0.1',
      port: t.port('submission'),
      requireTLS: true,
      auth: { user: USER, pass: 'nope' },
      tls: { ca: [t.cert], servername: HOSTNAME },
    });
    await expect(wrong.sendMail({ envelope: { from: 'a@sender.example', to: ['x@dest.example'] }, raw: rawMessage('badpw') })).rejects.toMatchObject({
      responseCode: 535,
    });
  });

  test('a large message is streamed and stored byte-identically', async () => {
    const raw = rawMessage('large', 40_000); // about 2 MB
    const info = await transport(t, 'submission').sendMail({ envelope: { from: 'a@sender.example', to: ['x@dest.example'] }, raw });
    const id = /queued as (\S+)/.exec(info.response)![1]!;
    const { rest } = splitReceived(await readBody(t.store, id));
    expect(rest.equals(Buffer.from(raw))).toBe(true);
  });
});
