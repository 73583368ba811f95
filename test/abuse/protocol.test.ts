import net from 'node:net';
import tls from 'node:tls';
import { RawSmtpClient } from '../support/smtp-client';
import { connectTls, message, RELAY_HOST, startAbuseRig, type AbuseRig } from './relay';

/**
 * Protocol abuse replayed from outside against a started relay whose MX hosts are the test world:
 * mail loops, end-of-data smuggling and NUL bytes, STARTTLS command injection, oversize messages
 * with commands inside, recipient floods and junk command floods. "Nothing reaches the MX" is
 * checked on the world's MX servers after a clean sentinel message has arrived there.
 */

const MAX_SIZE = 64 * 1024;

describe('SMTP protocol abuse from outside', () => {
  let rig: AbuseRig;

  beforeAll(async () => {
    rig = await startAbuseRig({ limits: { minFreeDisk: 0, maxMessageSize: MAX_SIZE } });
  }, 60_000);

  afterAll(async () => {
    await rig?.stop();
  });

  beforeEach(() => rig.world.clearRecords());

  /** The smarthost listener trusts 127.0.0.1: relaying without AUTH after STARTTLS. */
  async function trustedSession(): Promise<RawSmtpClient> {
    return connectTls(rig.relay.ports.smarthost!);
  }

  /** MAIL, RCPT and DATA, then the raw data (which must end with the final dot); the reply to the final dot. */
  async function sendRaw(client: RawSmtpClient, data: string | Buffer, rcpt = 'patient@tls13.test') {
    expect((await client.command('MAIL FROM:<app@sender.test>')).code).toBe(250);
    expect((await client.command(`RCPT TO:<${rcpt}>`)).code).toBe(250);
    expect((await client.command('DATA')).code).toBe(354);
    client.write(data);
    return client.readReply();
  }

  /** Sends a clean message and waits until the MX has it, so everything sent before had its chance to arrive. */
  async function sentinel(tag: string): Promise<void> {
    const client = await trustedSession();
    try {
      const answer = await sendRaw(client, `${message(tag)}.\r\n`);
      expect(answer.code).toBe(250);
    } finally {
      client.close();
    }
    await rig.world.mx('mx1.tls13.test').waitFor((m) => m.raw.toString('latin1').includes(`<${tag}@sender.test>`), 30_000);
  }

  function everythingReceived(): string[] {
    return rig.world.received().map((m) => m.raw.toString('latin1'));
  }

  test('60 Received headers: 554 5.4.6 Too many hops, and nothing reaches the MX', async () => {
    const hops = Array.from({ length: 60 }, (_, i) => `Received: from hop${i}.example by hop${i + 1}.example; Fri, 27 Nov 2026 10:00:00 +0000\r\n`).join('');
    const client = await trustedSession();
    try {
      const answer = await sendRaw(client, `${message('loop60', { headers: hops })}.\r\n`);
      expect(answer.lines[0]).toBe('554 5.4.6 Too many hops');
      // 50 are still accepted (Postfix's hop limit).
      const fifty = Array.from({ length: 50 }, (_, i) => `Received: from hop${i}.example; Fri, 27 Nov 2026 10:00:00 +0000\r\n`).join('');
      expect((await sendRaw(client, `${message('loop50', { headers: fifty })}.\r\n`)).code).toBe(250);
    } finally {
      client.close();
    }
    await rig.world.mx('mx1.tls13.test').waitFor((m) => m.raw.toString('latin1').includes('<loop50@sender.test>'), 30_000);
    await sentinel('after-loop');
    expect(everythingReceived().filter((raw) => raw.includes('<loop60@sender.test>'))).toEqual([]);
  }, 60_000);

  // The end-of-data sequences of the SMTP smuggling family (hardening notes), each followed by a second transaction.
  const SMUGGLING: Array<[string, string]> = [
    ['\\n.\\n', '\n.\n'],
    ['\\n.\\r\\n', '\n.\r\n'],
    ['\\r.\\r', '\r.\r'],
    ['\\r\\n.\\r', '\r\n.\r'],
    ['\\r\\n.\\n', '\r\n.\n'],
    ['\\n.\\r', '\n.\r'],
    ['\\r\\n\\x00.\\r\\n', '\r\n\x00.\r\n'],
  ];

  test.each(SMUGGLING)(
    'end-of-data smuggling with %s is refused with 550 5.6.0 and no second message reaches any MX',
    async (_label, sequence) => {
      const tag = `smuggle-${Buffer.from(sequence).toString('hex')}`;
      const second = `MAIL FROM:<evil@sender.test>\r\nRCPT TO:<smuggled@tls12.test>\r\nDATA\r\nSubject: smuggled ${tag}\r\n\r\nsmuggled\r\n`;
      const client = await trustedSession();
      try {
        const answer = await sendRaw(client, `${message(tag, { body: `first line${sequence}${second}` })}.\r\n`);
        expect(answer.code).toBe(550);
        expect(answer.lines[0]).toMatch(/^550 5\.6\.0 /);
        // The session is still in step: the next command gets its own reply.
        expect((await client.command('NOOP')).code).toBe(250);
      } finally {
        client.close();
      }
      await sentinel(`after-${tag}`);
      expect(rig.world.mx('mx1.tls12.test').received).toEqual([]);
      expect(everythingReceived().filter((raw) => raw.includes('smuggled'))).toEqual([]);
    },
    60_000,
  );

  test('bare NUL bytes in a body are refused with 550 5.6.0 and never reach the MX', async () => {
    const client = await trustedSession();
    try {
      const answer = await sendRaw(client, `${message('nul', { body: 'a\x00b\r\nplain line\r\n\x00\r\n' })}.\r\n`);
      expect(answer.lines[0]).toBe('550 5.6.0 Message contains NUL bytes');
      const inHeader = await sendRaw(client, `${message('nul-header', { headers: 'X-Odd: a\x00b\r\n' })}.\r\n`);
      expect(inHeader.lines[0]).toBe('550 5.6.0 Message contains NUL bytes');
    } finally {
      client.close();
    }
    await sentinel('after-nul');
    expect(everythingReceived().some((raw) => raw.includes('\x00'))).toBe(false);
    expect(rig.relay.logs).toContainEqual(expect.objectContaining({ event: 'command-rejected', command: 'DATA', reason: 'nul-byte', code: 550 }));
  }, 60_000);

  test('STARTTLS command injection: commands pipelined after STARTTLS before the handshake are discarded', async () => {
    const plain = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port: rig.relay.ports.smarthost! }, () => resolve(s));
      s.once('error', reject);
    });
    const plainReader = lineReader(plain);
    try {
      expect(await plainReader.reply()).toMatch(/^220 /);
      plain.write('EHLO client.test\r\n');
      expect(await plainReader.reply()).toMatch(/^250 /);
      plain.write('STARTTLS\r\nMAIL FROM:<evil@sender.test>\r\nRCPT TO:<smuggled@tls12.test>\r\n');
      expect(await plainReader.reply()).toMatch(/^220 /);
      plainReader.detach();
      const secure = await new Promise<tls.TLSSocket>((resolve, reject) => {
        const s = tls.connect({ socket: plain, rejectUnauthorized: false, servername: RELAY_HOST }, () => resolve(s));
        s.once('error', reject);
      });
      const reader = lineReader(secure);
      secure.write('EHLO client.test\r\n');
      expect(await reader.reply()).toMatch(/^250 /);
      // Had the injected MAIL been kept, RCPT would be accepted (or the MAIL would be a nested 503).
      secure.write('RCPT TO:<patient@tls13.test>\r\n');
      expect(await reader.reply()).toMatch(/^503 /);
      secure.write('MAIL FROM:<app@sender.test>\r\n');
      expect(await reader.reply()).toMatch(/^250 /);
      secure.destroy();
    } finally {
      plain.destroy();
    }
  });

  test('oversize message with SMTP commands after the limit: one 552, the commands inside are not executed', async () => {
    const filler = `${'x'.repeat(998)}\r\n`.repeat(Math.ceil((MAX_SIZE * 1.5) / 1000));
    const inside = 'RSET\r\nMAIL FROM:<evil@sender.test>\r\nRCPT TO:<smuggled@tls12.test>\r\nDATA\r\nsmuggled\r\n';
    const client = await trustedSession();
    try {
      const answer = await sendRaw(client, `${message('oversize', { body: `${filler}${inside}` })}.\r\n`);
      expect(answer.code).toBe(552);
      expect(answer.lines[0]).toMatch(/^552 5\.3\.4 /);
      // The very next reply belongs to the next command: nothing from inside the message was run.
      const noop = await client.command('NOOP');
      expect(noop.lines).toEqual(['250 2.0.0 OK']);
      expect((await client.command('RCPT TO:<patient@tls13.test>')).code).toBe(503);
    } finally {
      client.close();
    }
    await sentinel('after-oversize');
    expect(rig.world.mx('mx1.tls12.test').received).toEqual([]);
  }, 60_000);

  test('1001 RCPT: refused past limits.maxRecipients, no crash, the relay keeps answering', async () => {
    const client = await trustedSession();
    const codes: number[] = [];
    try {
      expect((await client.command('MAIL FROM:<app@sender.test>')).code).toBe(250);
      client.write(Array.from({ length: 1001 }, (_, i) => `RCPT TO:<patient${i}@tls13.test>\r\n`).join(''));
      while (codes.length < 1001) {
        try {
          codes.push((await client.readReply()).code);
        } catch {
          break; // closed after too many refusals
        }
      }
    } finally {
      client.close();
    }
    expect(codes.slice(0, 100)).toEqual(Array(100).fill(250));
    expect(codes.length).toBeGreaterThan(100);
    expect(codes.slice(100).every((c) => c >= 400)).toBe(true);
    await liveness();
  }, 60_000);

  test('200 junk commands: 421 after limits.maxBadCommands, and an address that keeps at it is refused at connect', async () => {
    const from = '127.0.0.70';
    const junk = Array.from({ length: 200 }, (_, i) => `XJUNK${i} ${'z'.repeat(i % 50)}\r\n`).join('');
    for (let session = 0; session < 5; session++) {
      const client = await RawSmtpClient.connect(rig.relay.ports.smarthost!, { localAddress: from });
      const replies: string[] = [];
      client.write(junk);
      for (;;) {
        try {
          replies.push((await client.readReply()).lines[0]!);
        } catch {
          break;
        }
      }
      client.close();
      // Closed with 421 after ten refusals (limits.maxBadCommands, and smtp-server's own cap on unrecognized commands).
      expect(replies.length).toBeLessThanOrEqual(11);
      expect(replies[replies.length - 1]).toMatch(/^421 /);
    }
    // Five closed sessions are limits.maxAbusePerIp strikes: the address is now refused at connect.
    const refused = await RawSmtpClient.connect(rig.relay.ports.smarthost!, { localAddress: from });
    expect(refused.greeting.lines[0]).toMatch(/^421 4\.7\.0 Too many failed attempts/);
    refused.close();
    // Others are not.
    await liveness('127.0.0.71');
  }, 60_000);

  /** A legitimate client still gets 250 to EHLO within 5 s. */
  async function liveness(localAddress?: string): Promise<void> {
    const client = await RawSmtpClient.connect(rig.relay.ports.smarthost!, { localAddress, timeoutMs: 5_000 });
    try {
      expect(client.greeting.code).toBe(220);
      expect((await client.command('EHLO client.test')).code).toBe(250);
    } finally {
      client.close();
    }
  }
});

/** Reads SMTP replies (the last line of each) from a socket, bounded by a 10 s wait each. */
function lineReader(socket: net.Socket) {
  let buffer = '';
  let wake: (() => void) | undefined;
  const onData = (chunk: Buffer): void => {
    buffer += chunk.toString('latin1');
    wake?.();
  };
  socket.on('data', onData);
  return {
    async reply(): Promise<string> {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const match = /^(\d{3}) [^\r\n]*\r\n/m.exec(buffer);
        if (match) {
          const end = match.index + match[0].length;
          buffer = buffer.slice(end);
          return match[0].trimEnd();
        }
        if (Date.now() > deadline || socket.destroyed) throw new Error(`no reply (buffer ${JSON.stringify(buffer)})`);
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 100);
        });
      }
    },
    detach(): void {
      socket.off('data', onData);
    },
  };
}
