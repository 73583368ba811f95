import net from 'node:net';
import { RawSmtpClient } from '../support/smtp-client';
import { until } from '../support/wait';
import { relayFixture, startRelayProcess, type RelayFixture, type RelayProcess } from '../support/relay-process';

/**
 * The listeners under abuse, replayed from outside against a `bin/sealgate` child process: idle
 * socket floods from one address on every listener (the implicit-TLS one included, where sockets
 * that never send a ClientHello used to sit outside every cap), idle sockets from several addresses
 * each under the per-IP cap, a command line trickled a byte at a time, a client that never sends a
 * command, and a STARTTLS handshake that never starts. Deadlines are short in this fixture so each
 * test stays well under a minute; every socket is destroyed at the end.
 */

const TLS = { rejectUnauthorized: false, servername: 'relay.test' };
const FLOOD = 200;
const PER_IP = 20;
const MAX_CONNECTIONS = 150;

interface Held {
  socket: net.Socket;
  connected: boolean;
  closed: boolean;
  data: string;
}

const opened: Held[] = [];

/** Opens `count` sockets from `localAddress` at once; resolves when each is connected or closed (bounded). */
async function openSockets(port: number, localAddress: string, count: number, onConnect?: (held: Held) => void): Promise<Held[]> {
  const batch = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<Held>((resolve) => {
          const socket = net.connect({ host: '127.0.0.1', port, localAddress });
          const held: Held = { socket, connected: false, closed: false, data: '' };
          opened.push(held);
          const timer = setTimeout(() => resolve(held), 10_000);
          socket.setEncoding('latin1');
          socket.on('data', (chunk: string) => (held.data += chunk));
          socket.on('error', () => undefined);
          socket.on('close', () => {
            held.closed = true;
            clearTimeout(timer);
            resolve(held);
          });
          socket.on('connect', () => {
            held.connected = true;
            onConnect?.(held);
            clearTimeout(timer);
            resolve(held);
          });
        }),
    ),
  );
  return batch;
}

/** Waits (bounded) until every socket is closed; returns how many are still open. */
async function waitClosed(sockets: Held[], timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && sockets.some((s) => !s.closed)) await new Promise((r) => setTimeout(r, 100));
  return sockets.filter((s) => !s.closed).length;
}

/** A legitimate client: greeting and EHLO answered, with the time it took. */
async function legitimateEhlo(port: number, implicitTls: boolean, localAddress = '127.0.0.3'): Promise<{ code: number; ms: number }> {
  const started = Date.now();
  const client = await RawSmtpClient.connect(port, { localAddress, timeoutMs: 5_000, tls: implicitTls ? TLS : undefined });
  try {
    expect(client.greeting.code).toBe(220);
    const ehlo = await client.command('EHLO legit.example');
    return { code: ehlo.code, ms: Date.now() - started };
  } finally {
    client.close();
  }
}

/** The relay logs asynchronously: its line can reach the test a moment after the client saw the close. */
async function logged(relay: RelayProcess, reason: string, listener?: string): Promise<void> {
  await until(
    `a ${reason} log line`,
    () => relay.logs.find((l) => (l.event === 'connection-refused' || l.event === 'connection-closed') && l.reason === reason && (listener === undefined || l.listener === listener)),
    5_000,
  );
}

describe('listeners under abuse', () => {
  let fixture: RelayFixture;
  let relay: RelayProcess;

  beforeAll(async () => {
    fixture = relayFixture({
      delivery: { enabled: false },
      limits: {
        minFreeDisk: 0,
        maxConnections: MAX_CONNECTIONS,
        maxConnectionsPerIp: PER_IP,
        tlsHandshakeTimeout: '2s',
        firstCommandTimeout: '3s',
        stressFirstCommandTimeout: '2s',
        commandTimeout: '4s',
        // Long enough that the sockets held in the fair-share test are still open when the 11th address comes.
        stressSocketTimeout: '30s',
      },
    });
    relay = await startRelayProcess(fixture.configFile);
  });

  afterEach(async () => {
    for (const held of opened.splice(0)) held.socket.destroy();
    // The next test starts from an empty relay.
    await new Promise((r) => setTimeout(r, 300));
  });

  afterAll(async () => {
    await relay?.stop('SIGKILL');
    fixture?.remove();
  });

  test.each([
    ['submissions', true],
    ['submission', false],
    ['smarthost', false],
  ])(`%s: ${FLOOD} idle sockets from one address neither lock out another address nor outlive the deadlines`, async (name, implicitTls) => {
    const port = relay.ports[name]!;
    const flood = await openSockets(port, '127.0.0.2', FLOOD);
    // While the flood is held, a client from another address is served at once.
    const legit = await legitimateEhlo(port, implicitTls);
    console.log(`${name}: ${FLOOD} idle sockets from 127.0.0.2; 127.0.0.3 got ${legit.code} to EHLO after ${legit.ms} ms`);
    expect(legit.code).toBe(250);
    expect(legit.ms).toBeLessThan(5_000);
    // Over the per-IP cap at accept; the rest by the handshake or first-command deadline.
    expect(await waitClosed(flood, 15_000)).toBe(0);
    if (!implicitTls) {
      // Over the cap a plaintext client still hears why, with the reply it always got.
      expect(flood.filter((h) => h.data.startsWith('421 4.7.0 Too many connections from your address, try again later\r\n'))).toHaveLength(FLOOD - PER_IP);
    }
    await logged(relay, 'max-connections-per-ip');
    await logged(relay, implicitTls ? 'handshake-timeout' : 'first-command-timeout');
  });

  test('10 addresses x 19 idle sessions (each under the per-IP cap) leave room for an 11th address', async () => {
    const port = relay.ports.smarthost!;
    const held: Held[] = [];
    for (let i = 10; i < 20; i++) {
      // Each session answers the greeting with EHLO and then idles, so only the connection caps can stop it.
      const ehloAfterGreeting = (h: Held): void => {
        const onData = (): void => {
          if (!h.data.includes('220 ')) return;
          h.socket.off('data', onData);
          h.socket.write('EHLO idle.example\r\n');
        };
        h.socket.on('data', onData);
      };
      held.push(...(await openSockets(port, `127.0.0.${i}`, PER_IP - 1, ehloAfterGreeting)));
    }
    // Bounded wait until every session has its EHLO answer or is closed.
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && held.some((h) => !h.closed && !/^250 /m.test(h.data))) await new Promise((r) => setTimeout(r, 100));
    const open = held.filter((h) => !h.closed).length;
    console.log(`fair share: ${open} of ${held.length} idle sessions from 10 addresses still open`);

    const client = await RawSmtpClient.connect(port, { localAddress: '127.0.0.20', timeoutMs: 5_000 });
    try {
      expect(client.greeting.code).toBe(220);
      expect((await client.command('EHLO eleventh.example')).code).toBe(250);
      expect((await client.startTls(TLS)).code).toBe(220);
      expect((await client.command('EHLO eleventh.example')).code).toBe(250);
      expect((await client.command('MAIL FROM:<clinic@sender.test>')).code).toBe(250);
      expect((await client.command('RCPT TO:<patient@partner.test>')).code).toBe(250);
      expect((await client.command('DATA')).code).toBe(354);
      const done = await client.command('From: clinic@sender.test\r\nTo: patient@partner.test\r\nSubject: eleventh\r\n\r\nhello\r\n.');
      expect(done.code).toBe(250);
    } finally {
      client.close();
    }
    await logged(relay, 'fair-share');
  });

  test('a command line trickled a byte every 2 s is closed by the command deadline', async () => {
    const client = await RawSmtpClient.connect(relay.ports.smarthost!, { localAddress: '127.0.0.4', timeoutMs: 20_000 });
    const line = 'EHLO slow.example.test\r\n';
    let sent = 0;
    const trickle = setInterval(() => {
      if (client.closed || sent >= line.length) return;
      client.write(line[sent++]!);
    }, 2_000);
    try {
      const reply = await client.readReply();
      expect(reply.code).toBe(421);
      expect(reply.text).toMatch(/^4\.4\.2 /);
      await client.waitClosed();
      console.log(`slow EHLO: closed after ${sent} of ${line.length} bytes`);
      expect(sent).toBeLessThan(line.length);
    } finally {
      clearInterval(trickle);
      client.close();
    }
    await logged(relay, 'command-timeout');
  });

  test('a client that never sends a command is closed by the first-command deadline', async () => {
    const client = await RawSmtpClient.connect(relay.ports.submission!, { localAddress: '127.0.0.5', timeoutMs: 15_000 });
    try {
      const reply = await client.readReply();
      expect(reply.code).toBe(421);
      expect(reply.text).toMatch(/^4\.4\.2 /);
      await client.waitClosed();
    } finally {
      client.close();
    }
    await logged(relay, 'first-command-timeout');
  });

  test('a STARTTLS handshake that never starts is closed by the handshake deadline', async () => {
    const client = await RawSmtpClient.connect(relay.ports.submission!, { localAddress: '127.0.0.6', timeoutMs: 15_000 });
    try {
      expect((await client.command('EHLO stalled.example')).code).toBe(250);
      expect((await client.command('STARTTLS')).code).toBe(220);
      // No ClientHello follows.
      await client.waitClosed();
    } finally {
      client.close();
    }
    await logged(relay, 'handshake-timeout', 'submission');
  });
});
