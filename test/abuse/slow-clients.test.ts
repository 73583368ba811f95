import { RawSmtpClient } from '../support/smtp-client';
import { connectTls, message, PASSWORD, plainToken, RELAY_HOST, startAbuseRig, USER, type AbuseRig } from './relay';

/**
 * Slow clients on every listener: from several addresses at once, some trickle a command line a
 * byte at a time, some trickle their message after DATA, some stop mid-line. While they hold their
 * sockets a legitimate client on the same listener keeps submitting and gets its `250` within 5 s
 * each time. Bounded: SLOW_PER_LISTENER clients per listener for at most HOLD_MS, every socket
 * destroyed at the end. The relay runs with short command and data deadlines so the slow clients
 * are also shown to be closed, not only tolerated.
 */

const SLOW_PER_LISTENER = 12;
const HOLD_MS = 9_000;
const ROUNDS = 3;
const TLS = { rejectUnauthorized: false, servername: RELAY_HOST };

type Listener = 'submission' | 'submissions' | 'smarthost';
const LISTENERS: Listener[] = ['submission', 'submissions', 'smarthost'];

interface Slow {
  client?: RawSmtpClient;
  timer?: NodeJS.Timeout;
}

/** The session up to the point where the slow part begins: AUTH unless the client is the smarthost's trusted 127.0.0.1. */
async function openSession(rig: AbuseRig, listener: Listener, localAddress: string): Promise<RawSmtpClient> {
  const client = await connectTls(rig.relay.ports[listener]!, { localAddress, timeoutMs: 10_000, implicit: listener === 'submissions' });
  if (listener !== 'smarthost' || localAddress !== '127.0.0.1') {
    const auth = await client.command(`AUTH PLAIN ${plainToken('', USER, PASSWORD)}`);
    if (auth.code !== 235) throw new Error(`AUTH failed: ${auth.lines.join(' ')}`);
  }
  return client;
}

/** Starts one slow client of the given kind; it trickles one byte per second until stopped or closed. */
async function startSlow(rig: AbuseRig, listener: Listener, index: number): Promise<Slow> {
  const localAddress = `127.0.0.${40 + (index % 8)}`;
  const slow: Slow = {};
  const kind = index % 3;
  if (kind === 0) {
    // A command line a byte at a time, before TLS.
    slow.client = await RawSmtpClient.connect(rig.relay.ports[listener]!, { localAddress, timeoutMs: 10_000, tls: listener === 'submissions' ? TLS : undefined });
  } else {
    slow.client = await openSession(rig, listener, localAddress);
    if (kind === 2) {
      // The message after DATA a byte at a time (far below limits.minDataRate).
      if ((await slow.client.command('MAIL FROM:<app@sender.test>')).code !== 250) throw new Error('MAIL refused');
      if ((await slow.client.command('RCPT TO:<patient@tls13.test>')).code !== 250) throw new Error('RCPT refused');
      if ((await slow.client.command('DATA')).code !== 354) throw new Error('DATA refused');
    }
  }
  const trickle = kind === 2 ? message(`slow-${listener}-${index}`) : 'MAIL FROM:<slow@sender.test>\r\n';
  let sent = 0;
  slow.timer = setInterval(() => {
    if (!slow.client || slow.client.closed || sent >= trickle.length) return;
    slow.client.write(trickle[sent++]!);
  }, 1_000);
  return slow;
}

/** One whole legitimate submission; resolves with the final reply code and how long it took. */
async function legitimateSubmission(rig: AbuseRig, listener: Listener, tag: string): Promise<{ code: number; ms: number }> {
  const started = Date.now();
  const client = await openSession(rig, listener, '127.0.0.1');
  try {
    expect((await client.command('MAIL FROM:<app@sender.test>')).code).toBe(250);
    expect((await client.command('RCPT TO:<patient@tls13.test>')).code).toBe(250);
    expect((await client.command('DATA')).code).toBe(354);
    const done = await client.command(`${message(tag)}.`);
    return { code: done.code, ms: Date.now() - started };
  } finally {
    client.close();
  }
}

describe('slow clients on every listener', () => {
  let rig: AbuseRig;

  beforeAll(async () => {
    rig = await startAbuseRig({ limits: { minFreeDisk: 0, commandTimeout: '6s', dataGrace: '4s', minDataRate: 1024, socketTimeout: '20s' } });
  });

  afterAll(async () => {
    await rig?.stop();
  });

  test.each(LISTENERS)('%s: a legitimate client keeps getting 250 within 5 s while slow clients trickle, and the slow ones are closed', async (listener) => {
    const slow: Slow[] = [];
    try {
      for (let i = 0; i < SLOW_PER_LISTENER; i++) slow.push(await startSlow(rig, listener, i));
      const holdUntil = Date.now() + HOLD_MS;
      for (let round = 0; round < ROUNDS; round++) {
        const result = await legitimateSubmission(rig, listener, `legit-${listener}-${round}`);
        console.log(`${listener}: ${SLOW_PER_LISTENER} slow clients; legitimate submission ${round + 1}/${ROUNDS}: ${result.code} after ${result.ms} ms`);
        expect(result.code).toBe(250);
        expect(result.ms).toBeLessThan(5_000);
        await new Promise((r) => setTimeout(r, Math.max(0, Math.min(2_000, holdUntil - Date.now()))));
      }
      // Command trickles meet the command deadline, body trickles the data rate: none outlives HOLD_MS by much.
      const deadline = Date.now() + 12_000;
      while (Date.now() < deadline && slow.some((s) => !s.client?.closed)) await new Promise((r) => setTimeout(r, 200));
      expect(slow.filter((s) => !s.client?.closed)).toHaveLength(0);
    } finally {
      for (const s of slow) {
        clearInterval(s.timer);
        s.client?.close();
      }
    }
  });
});
