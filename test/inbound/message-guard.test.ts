import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { GuardError, MessageGuard, type GuardLimits } from '../../src/inbound/message-guard';

const limits: GuardLimits = { maxMessageSize: 1000, maxLineLength: 50, maxHeaderSize: 200, maxReceivedHeaders: 3 };

/** Runs chunks through a guard; returns the output or the guard's problem. */
async function runGuard(chunks: string[], opts: { limits?: GuardLimits; prefix?: string } = {}): Promise<{ output: string; problem?: string; header: string }> {
  const guard = new MessageGuard(opts.limits ?? limits, opts.prefix ? Buffer.from(opts.prefix) : undefined);
  const out: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      out.push(chunk);
      cb();
    },
  });
  try {
    await pipeline(Readable.from(chunks.map((c) => Buffer.from(c, 'latin1'))), guard, sink);
    return { output: Buffer.concat(out).toString('latin1'), header: guard.headerBlock().toString('latin1') };
  } catch (err) {
    expect(err).toBeInstanceOf(GuardError);
    return { output: Buffer.concat(out).toString('latin1'), problem: (err as GuardError).problem, header: guard.headerBlock().toString('latin1') };
  }
}

const run = runGuard;

describe('MessageGuard', () => {
  test('passes a clean message through unchanged, after the prefix', async () => {
    const message = 'Subject: hi\r\nFrom: a@b.example\r\n\r\nbody line\r\n';
    const result = await run([message.slice(0, 7), message.slice(7, 30), message.slice(30)], { prefix: 'Received: x\r\n' });
    expect(result.problem).toBeUndefined();
    expect(result.output).toBe(`Received: x\r\n${message}`);
    expect(result.header).toBe('Subject: hi\r\nFrom: a@b.example\r\n\r\n');
  });

  test.each([
    ['bare LF in the body', ['Subject: x\r\n\r\nline\nmore\r\n']],
    ['bare LF in the header', ['Subject: x\n\r\nbody\r\n']],
    ['bare CR', ['Subject: x\r\n\r\nline\rmore\r\n']],
    ['CR at the end of one chunk and no LF at the start of the next', ['Subject: x\r\n\r\nline\r', 'more\r\n']],
    ['a message ending in a lone CR', ['Subject: x\r\n\r\nline\r']],
    ['the LF.LF smuggling sequence', ['Subject: x\r\n\r\nhello\n.\nMAIL FROM:<x@y.example>\r\n']],
  ])('refuses %s', async (_label, chunks) => {
    expect((await run(chunks)).problem).toBe('bare-newline');
  });

  test('accepts CRLF split across chunks', async () => {
    expect((await run(['Subject: x\r', '\n\r', '\nbody\r', '\n'])).problem).toBeUndefined();
  });

  test('refuses a message over maxMessageSize at the first byte over, not counting the prefix', async () => {
    const line = `${'a'.repeat(48)}\r\n`;
    const exact = `Subject: x\r\n\r\n${line.repeat(19)}${'b'.repeat(34)}\r\n`;
    expect(exact.length).toBe(1000);
    expect((await run([exact], { prefix: 'Received: x\r\n'.repeat(10) })).problem).toBeUndefined();
    const over = `${exact}c`;
    const result = await run([over.slice(0, 900), over.slice(900)]);
    expect(result.problem).toBe('too-big');
    // Nothing of the chunk that crossed the limit was passed on.
    expect(result.output.length).toBe(900);
  });

  test('refuses a line longer than maxLineLength', async () => {
    expect((await run([`Subject: x\r\n\r\n${'a'.repeat(50)}\r\n`])).problem).toBeUndefined();
    expect((await run([`Subject: x\r\n\r\n${'a'.repeat(51)}\r\n`])).problem).toBe('line-too-long');
  });

  test('refuses a header section over maxHeaderSize, even without a blank line', async () => {
    const header = Array.from({ length: 6 }, (_, i) => `X-H${i}: ${'v'.repeat(30)}\r\n`).join('');
    expect(header.length).toBeGreaterThan(200);
    expect((await run([`${header}\r\nbody\r\n`])).problem).toBe('header-too-big');
    expect((await run([header])).problem).toBe('header-too-big');
  });

  describe('NUL bytes', () => {
    const smuggled = 'Subject: x\r\n\r\nhello\r\n\x00.\r\nMAIL FROM:<x@y.example>\r\n';
    test.each([
      ['a NUL in a header value', ['Subject: a\x00b\r\n\r\nbody\r\n']],
      ['a NUL in the body', ['Subject: x\r\n\r\nbo\x00dy\r\n']],
      ['a NUL alone at the start of a chunk', ['Subject: x\r\n\r\nbody\r\n', '\x00', 'more\r\n']],
      ['a NUL after CR, where an LF was due', ['Subject: x\r\n\r\nbody\r\x00\n']],
      ['the CRLF NUL . CRLF smuggling sequence', [smuggled]],
      ['the same sequence split at every byte', smuggled.split('')],
    ])('refuses %s', async (_label, chunks) => {
      const result = await run(chunks);
      expect(result.problem).toBe('nul-byte');
      // Nothing from the chunk with the NUL reaches the store.
      expect(result.output).not.toContain('\x00');
    });
  });

  describe('Received: fields (hop count, limit 3 here)', () => {
    const hops: GuardLimits = { ...limits, maxLineLength: 1000, maxHeaderSize: 10_000 };
    const received = (n: number): string => Array.from({ length: n }, (_, i) => `Received: from hop${i} by x; Fri, 27 Nov 2026 10:00:00 +0000\r\n`).join('');
    const run = (chunks: string[], opts: { prefix?: string } = {}) => runGuard(chunks, { limits: hops, ...opts });
    test('exactly the limit passes, one more is too-many-hops', async () => {
      expect((await run([`${received(3)}Subject: x\r\n\r\nbody\r\n`])).problem).toBeUndefined();
      expect((await run([`${received(4)}Subject: x\r\n\r\nbody\r\n`])).problem).toBe('too-many-hops');
    });

    test('counts any spelling and blanks before the colon, fields anywhere in the header', async () => {
      const header = `Subject: x\r\nRECEIVED: a\r\nX-Other: y\r\nreceived : b\r\nReceived:c\r\nReCeIvEd: d\r\n\r\nbody\r\n`;
      expect((await run([header])).problem).toBe('too-many-hops');
    });

    test('counts field names split across chunks at every byte', async () => {
      const message = `${received(4)}\r\nbody\r\n`;
      expect((await run(message.split(''))).problem).toBe('too-many-hops');
    });

    test('does not count look-alikes: other fields, folded lines, or Received lines in the body', async () => {
      const header = 'X-Received: a\r\nReceived-SPF: pass\r\nReceivedx: b\r\nSubject: Received: c\r\n Received: folded continuation\r\n\tReceived: tab continuation\r\nReceived: only one\r\n\r\n';
      const body = received(10);
      expect((await run([`${header}${body}`])).problem).toBeUndefined();
    });

    test('the prefix Sealgate prepends is not counted', async () => {
      expect((await run([`${received(3)}\r\nbody\r\n`], { prefix: received(5) })).problem).toBeUndefined();
    });
  });

  test('headerReady resolves once the blank line has passed', async () => {
    const guard = new MessageGuard(limits);
    const ready = guard.headerReady();
    guard.write(Buffer.from('Subject: x\r\n'));
    guard.write(Buffer.from('\r\nbody'));
    await expect(ready).resolves.toEqual(Buffer.from('Subject: x\r\n\r\n'));
    guard.destroy();
  });

  test('headerReady resolves at the end for a message without a body', async () => {
    const guard = new MessageGuard(limits);
    guard.resume();
    const ready = guard.headerReady();
    guard.end(Buffer.from('Subject: x\r\n'));
    await expect(ready).resolves.toEqual(Buffer.from('Subject: x\r\n'));
  });

  test('headerReady rejects when the guard fails first', async () => {
    const guard = new MessageGuard(limits);
    guard.on('error', () => undefined);
    const ready = guard.headerReady();
    guard.write(Buffer.from('Subject: x\n'));
    await expect(ready).rejects.toMatchObject({ problem: 'bare-newline' });
  });
});

/**
 * The rule the guard implements, byte by byte over the whole message (as the guard did before it scanned the body
 * natively): the first NUL, bare CR, bare LF, over-long line or surplus Received: field in the header, in byte order.
 */
function firstProblemByteByByte(message: Buffer, max: GuardLimits): string | undefined {
  let inHeader = true;
  let previousWasCr = false;
  let lineLength = 0;
  let fieldName: string | undefined = '';
  let received = 0;
  for (const byte of message) {
    if (byte === 0x00) return 'nul-byte';
    if (previousWasCr) {
      if (byte !== 0x0a) return 'bare-newline';
      previousWasCr = false;
      if (inHeader && lineLength === 0) inHeader = false;
      lineLength = 0;
      fieldName = '';
      continue;
    }
    if (byte === 0x0d) {
      previousWasCr = true;
      continue;
    }
    if (byte === 0x0a) return 'bare-newline';
    lineLength++;
    if (inHeader && fieldName !== undefined) {
      if (byte !== 0x3a) fieldName = fieldName.length < 16 ? fieldName + String.fromCharCode(byte).toLowerCase() : undefined;
      else {
        if (fieldName.trimEnd() === 'received' && ++received > max.maxReceivedHeaders) return 'too-many-hops';
        fieldName = undefined;
      }
    }
    if (lineLength > max.maxLineLength) return 'line-too-long';
  }
  return previousWasCr ? 'bare-newline' : undefined;
}

describe('MessageGuard against the byte-by-byte rule', () => {
  const seed = Number(process.env.GUARD_SEED ?? Math.floor(Math.random() * 2 ** 31));
  // Bounded: 3,000 generated messages, each under 400 bytes.
  test(`3,000 random messages in random chunks give the same first problem and header (GUARD_SEED=${seed})`, async () => {
    let state = seed;
    const random = (): number => {
      state = (state * 1103515245 + 12345) % 2 ** 31;
      return state / 2 ** 31;
    };
    const pieces = ['a', 'b', ' ', 'x'.repeat(9), '\r\n', '\r\n', '\r\n', '\r', '\n', '\0', ':', 'Received: r', 'Subject: s', '\r\n\r\n'];
    for (let n = 0; n < 3_000; n++) {
      const max: GuardLimits = { maxMessageSize: 10_000, maxLineLength: 4 + Math.floor(random() * 30), maxHeaderSize: 10_000, maxReceivedHeaders: 2 };
      let text = random() < 0.5 ? 'Subject: t\r\n\r\n' : '';
      const parts = Math.floor(random() * 40);
      for (let p = 0; p < parts; p++) text += pieces[Math.floor(random() * pieces.length)];
      // Mostly clean messages too: drop the troublemakers from half of them.
      if (random() < 0.5)
        text = text
          .replace(/\0/g, '')
          .replace(/\r(?!\n)/g, '')
          .replace(/(?<!\r)\n/g, '');
      const message = Buffer.from(text, 'latin1');
      const chunks: string[] = [];
      for (let at = 0; at < message.length;) {
        const size = 1 + Math.floor(random() * 12);
        chunks.push(text.slice(at, at + size));
        at += size;
      }
      const result = await run(chunks, { limits: max });
      const expected = firstProblemByteByByte(message, max);
      if (result.problem !== expected) throw new Error(`message ${n} ${JSON.stringify(text)} (max line ${max.maxLineLength}): guard ${result.problem}, rule ${expected}`);
      if (expected === undefined) {
        const end = text.indexOf('\r\n\r\n');
        expect(result.header).toBe(end >= 0 && !text.startsWith('\r\n') ? text.slice(0, end + 4) : text.startsWith('\r\n') ? '\r\n' : text);
      }
    }
  });
});
