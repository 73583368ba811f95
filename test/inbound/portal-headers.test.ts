import { PassThrough, Readable } from 'node:stream';
import pino from 'pino';
import { verifyPassword } from '../../src/auth/users';
import { receiveMessage, type DataTransfer } from '../../src/inbound/data-pipeline';
import { parsePortalChoices, PortalHeaderFilter, storedPortalChoices, stripPortalFields } from '../../src/inbound/portal-headers';
import type { HeaderFacts, NewMessage } from '../../src/store/types';

const DAY = 24 * 60 * 60 * 1000;

/** Feeds the chunks through a filter; returns what came out and the removed fields. */
async function filter(chunks: Array<string | Buffer>) {
  const f = new PortalHeaderFilter();
  const header = f.headerReady();
  const out: Buffer[] = [];
  f.on('data', (c: Buffer) => out.push(c));
  const done = new Promise<void>((resolve, reject) => {
    f.on('end', resolve);
    f.on('error', reject);
  });
  Readable.from(chunks.map((c) => (typeof c === 'string' ? Buffer.from(c, 'utf8') : c))).pipe(f);
  await done;
  return { output: Buffer.concat(out).toString('utf8'), header: (await header).toString('utf8'), fields: f.fields };
}

function logSink() {
  const logs: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const log = pino(
    { level: 'info' },
    {
      write: (line: string) => {
        raw.push(line);
        logs.push(JSON.parse(line) as Record<string, unknown>);
      },
    },
  );
  return { log, logs, raw };
}

const MESSAGE = [
  'From: a@sender.example',
  'x-sealgate-portal-NOTIFY: no',
  'Subject: hello',
  'X-Sealgate-Portal-Methods: secret,',
  '\temail-otp',
  'X-SEALGATE-PORTAL-Expiry: 7d',
  'X-Sealgate-Portal-Secret: open',
  ' sesame',
  'X-Other: kept',
  '  folded kept',
  '',
  'body first line',
  'X-Sealgate-Portal-Notify: no',
  'X-Sealgate-Portal-Secret: in the body stays',
  '',
].join('\r\n');

const EXPECTED = [
  'From: a@sender.example',
  'Subject: hello',
  'X-Other: kept',
  '  folded kept',
  '',
  'body first line',
  'X-Sealgate-Portal-Notify: no',
  'X-Sealgate-Portal-Secret: in the body stays',
  '',
].join('\r\n');

describe('PortalHeaderFilter', () => {
  test('removes every X-Sealgate-Portal-* field (any case, folded lines too) from the header only; the body is untouched', async () => {
    const { output, header, fields } = await filter([MESSAGE]);
    expect(output).toBe(EXPECTED);
    expect(header).toBe('From: a@sender.example\r\nSubject: hello\r\nX-Other: kept\r\n  folded kept\r\n\r\n');
    expect(fields).toEqual([
      { name: 'x-sealgate-portal-NOTIFY', value: 'no' },
      { name: 'X-Sealgate-Portal-Methods', value: 'secret,\temail-otp' },
      { name: 'X-SEALGATE-PORTAL-Expiry', value: '7d' },
      { name: 'X-Sealgate-Portal-Secret', value: 'open sesame' },
    ]);
  });

  test('gives the same result when the header arrives one byte at a time (CRLF and the blank line split between chunks)', async () => {
    const bytes = Buffer.from(MESSAGE, 'utf8');
    const chunks = Array.from(bytes, (b) => Buffer.from([b]));
    const { output, fields } = await filter(chunks);
    expect(output).toBe(EXPECTED);
    expect(fields.map((f) => f.value)).toEqual(['no', 'secret,\temail-otp', '7d', 'open sesame']);
  });

  test.each([
    ['between CR and LF of the blank line', MESSAGE.indexOf('\r\n\r\n') + 3],
    ['between the two CRLFs', MESSAGE.indexOf('\r\n\r\n') + 2],
    ['inside a folded field', MESSAGE.indexOf(' sesame') + 1],
  ])('a chunk boundary %s changes nothing', async (_label, at) => {
    const { output, fields } = await filter([MESSAGE.slice(0, at), MESSAGE.slice(at)]);
    expect(output).toBe(EXPECTED);
    expect(fields).toHaveLength(4);
  });

  test('passes body chunks through as they come once the header is done', async () => {
    const f = new PortalHeaderFilter();
    const out: Buffer[] = [];
    f.on('data', (c: Buffer) => out.push(c));
    f.write(Buffer.from('Subject: x\r\nX-Sealgate-Portal-Notify: yes\r\n'));
    await new Promise((r) => setImmediate(r));
    expect(out).toHaveLength(0); // the header block is held until it is complete
    f.write(Buffer.from('\r\nbody 1\r\n'));
    await new Promise((r) => setImmediate(r));
    expect(Buffer.concat(out).toString()).toBe('Subject: x\r\n\r\nbody 1\r\n');
    f.write(Buffer.from('X-Sealgate-Portal-Notify: no\r\n'));
    await new Promise((r) => setImmediate(r));
    expect(Buffer.concat(out).toString()).toBe('Subject: x\r\n\r\nbody 1\r\nX-Sealgate-Portal-Notify: no\r\n');
    expect(f.fields).toEqual([{ name: 'X-Sealgate-Portal-Notify', value: 'yes' }]);
    f.end();
  });

  test('a message without a blank line is all header; one without header fields keeps its body', async () => {
    expect((await filter(['Subject: x\r\nX-Sealgate-Portal-Notify: no\r\n'])).output).toBe('Subject: x\r\n');
    const bare = await filter(['\r\nX-Sealgate-Portal-Notify: no\r\n']);
    expect(bare.output).toBe('\r\nX-Sealgate-Portal-Notify: no\r\n');
    expect(bare.fields).toEqual([]);
  });

  test('a field that only resembles the prefix stays', () => {
    const { kept, removed } = stripPortalFields(Buffer.from('X-Sealgate-Portal: a\r\nX-Sealgate-Portalx-Notify: b\r\nX-Sealgate-Portal-Notify: no\r\n\r\n'));
    expect(kept.toString()).toBe('X-Sealgate-Portal: a\r\nX-Sealgate-Portalx-Notify: b\r\n\r\n');
    expect(removed).toEqual([{ name: 'X-Sealgate-Portal-Notify', value: 'no' }]);
  });
});

describe('parsePortalChoices', () => {
  test('turns the recognised fields into choices', () => {
    const { log } = logSink();
    const choices = parsePortalChoices(
      [
        { name: 'X-Sealgate-Portal-Notify', value: 'No' },
        { name: 'X-Sealgate-Portal-Expiry', value: '7d' },
        { name: 'X-Sealgate-Portal-Methods', value: 'email-otp, secret, carrier-pigeon, SECRET' },
        { name: 'X-Sealgate-Portal-Secret', value: 'open sesame' },
      ],
      log,
    );
    expect(choices).toEqual({ notify: false, expiry: 7 * DAY, methods: ['email-otp', 'secret'], secret: 'open sesame' });
    expect(parsePortalChoices([{ name: 'x-sealgate-portal-notify', value: 'yes' }], log)).toEqual({ notify: true });
  });

  test.each(['12h', '366d', 'soon', '0d', ''])('ignores the expiry %p with a log line naming the header, never the value', (value) => {
    const { log, logs, raw } = logSink();
    expect(parsePortalChoices([{ name: 'X-Sealgate-Portal-Expiry', value: `${value}` }], log)).toEqual({});
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatchObject({ event: 'portal-header-ignored', header: 'X-Sealgate-Portal-Expiry' });
    if (value.length >= 4) expect(raw.join('')).not.toContain(value);
  });

  test('accepts the bounds 1d and 365d', () => {
    const { log } = logSink();
    expect(parsePortalChoices([{ name: 'X-Sealgate-Portal-Expiry', value: '1d' }], log)).toEqual({ expiry: DAY });
    expect(parsePortalChoices([{ name: 'X-Sealgate-Portal-Expiry', value: '365d' }], log)).toEqual({ expiry: 365 * DAY });
  });

  test('drops unknown methods, bad notify values and unknown portal headers without logging values', () => {
    const { log, logs, raw } = logSink();
    const choices = parsePortalChoices(
      [
        { name: 'X-Sealgate-Portal-Methods', value: 'telepathy' },
        { name: 'X-Sealgate-Portal-Notify', value: 'maybe-later' },
        { name: 'X-Sealgate-Portal-Colour', value: 'ultraviolet' },
      ],
      log,
    );
    expect(choices).toEqual({});
    expect(logs.map((l) => l.header)).toEqual(['X-Sealgate-Portal-Methods', 'X-Sealgate-Portal-Notify', 'X-Sealgate-Portal-Colour']);
    for (const secret of ['telepathy', 'maybe-later', 'ultraviolet']) expect(raw.join('')).not.toContain(secret);
  });

  test('the stored choices carry the secret only as a verifiable scrypt hash', async () => {
    const stored = await storedPortalChoices({ notify: false, methods: ['secret'], secret: 'open sesame' });
    expect(stored).toMatchObject({ notify: false, methods: ['secret'] });
    expect(stored!.secretHash).toMatch(/^scrypt\$\d+\$\d+\$\d+\$[^$]+\$[^$]+$/);
    expect(JSON.stringify(stored)).not.toContain('open sesame');
    await expect(verifyPassword('open sesame', stored!.secretHash!)).resolves.toBe(true);
    await expect(verifyPassword('open', stored!.secretHash!)).resolves.toBe(false);
    expect(await storedPortalChoices({})).toBeUndefined();
  });
});

describe('receiveMessage with portal headers', () => {
  test('the store gets the stripped body, header facts of the stripped block and params.portal', async () => {
    const seen: { body?: Buffer; headers?: HeaderFacts; message?: NewMessage } = {};
    const store = {
      async enqueue(message: NewMessage, body: Readable, headers?: HeaderFacts) {
        const chunks: Buffer[] = [];
        for await (const chunk of body) chunks.push(chunk as Buffer);
        Object.assign(seen, { body: Buffer.concat(chunks), headers, message });
        return { id: 'Q1' };
      },
    } as unknown as DataTransfer['store'];
    const stream = Object.assign(new PassThrough(), { byteLength: 0, sizeExceeded: false });
    const { log, raw } = logSink();
    const work = receiveMessage({
      stream,
      store,
      limits: { maxMessageSize: 10_000, maxLineLength: 1000, maxHeaderSize: 1000, maxReceivedHeaders: 50, dataGrace: 30_000, minDataRate: 0 },
      message: { from: 'a@sender.example', recipients: [{ address: 'p@dest.example' }], params: {}, client: { ip: '192.0.2.1', listener: 'smarthost' }, receivedAt: Date.now() },
      received: Buffer.from('Received: from client.test\r\n'),
      log,
      onComplete: () => undefined,
      complete: () => false,
      onTooSlow: () => undefined,
    });
    for (const piece of MESSAGE.match(/[\s\S]{1,5}/g)!) stream.write(piece);
    stream.end();
    await expect(work).resolves.toMatchObject({ queueId: 'Q1' });
    expect(seen.body!.toString()).toBe(`Received: from client.test\r\n${EXPECTED}`);
    expect(seen.headers).toEqual({ from: 'a@sender.example' });
    expect(seen.message!.params.portal).toMatchObject({ notify: false, expiry: 7 * DAY, methods: ['secret', 'email-otp'] });
    expect(seen.message!.params.portal!.secretHash).toMatch(/^scrypt\$/);
    expect(JSON.stringify(seen.message)).not.toContain('sesame');
    expect(raw.join('')).not.toContain('sesame');
  });
});
