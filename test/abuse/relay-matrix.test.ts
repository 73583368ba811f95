import { connectTls, message, startAbuseRig, type AbuseRig } from './relay';

/**
 * The open-relay matrix from an untrusted, unauthenticated address (127.0.0.60; the smarthost
 * listener trusts only 127.0.0.1): every routing trick a relay must not honour, on every listener.
 * Each case is its own session (so refusals do not add up to limits.maxBadCommands); in the end a
 * trusted sentinel message reaches its MX and nothing else reached any MX.
 */

const UNTRUSTED = '127.0.0.60';

// Recipient forms aimed at the world's MX hosts (tls13.test, tls12.test) or at an address literal of one.
const RECIPIENTS = [
  ['plain external address', 'patient@tls13.test'],
  ['source route', '@tls13.test:patient@tls12.test'],
  ['source route with two hops', '@tls13.test,@tls12.test:patient@chacha.test'],
  ['%-hack', 'patient%tls12.test@tls13.test'],
  ['%-hack to the relay itself', 'patient%tls12.test@relay.test'],
  ['bang path', 'tls12.test!patient@tls13.test'],
  ['bare bang path', 'tls12.test!patient'],
  ['quoted local part with @', '"patient@tls12.test"@tls13.test'],
  ['quoted local part with %', '"patient%tls12.test"@tls13.test'],
  ['address literal', 'patient@[127.0.0.10]'],
  ['IPv6 address literal', 'patient@[IPv6:::1]'],
  ['unqualified address', 'patient'],
  ['unqualified postmaster', 'postmaster'],
  ['the relay host name', 'patient@relay.test'],
] as const;

const LISTENERS = [
  ['smarthost', false],
  ['submission', false],
  ['submissions', true],
] as const;

describe('open-relay matrix from an untrusted, unauthenticated address', () => {
  let rig: AbuseRig;

  beforeAll(async () => {
    rig = await startAbuseRig({ limits: { minFreeDisk: 0 } });
    rig.world.clearRecords();
  }, 60_000);

  afterAll(async () => {
    await rig?.stop();
  });

  const cases = LISTENERS.flatMap(([listener, implicit]) => RECIPIENTS.map(([label, rcpt]) => [listener, label, rcpt, implicit] as const));

  test.each(cases)('%s: %s (%s) is refused and DATA cannot follow', async (listener, _label, rcpt, implicit) => {
    const client = await connectTls(rig.relay.ports[listener]!, { localAddress: UNTRUSTED, implicit });
    try {
      // MAIL may pass (smarthost: AUTH optional) or not (530 where AUTH is required); RCPT never does.
      await client.command('MAIL FROM:<app@sender.test>');
      const answer = await client.command(`RCPT TO:<${rcpt}>`);
      expect(answer.code).toBeGreaterThanOrEqual(500);
      const data = await client.command('DATA');
      expect(data.code).toBeGreaterThanOrEqual(500);
      if (data.code === 354) {
        client.write(`${message('relay-matrix')}.\r\n`);
        await client.readReply();
      }
    } finally {
      client.close();
    }
  });

  test('nothing reached any MX (a trusted sentinel message did)', async () => {
    const client = await connectTls(rig.relay.ports.smarthost!);
    try {
      expect((await client.command('MAIL FROM:<app@sender.test>')).code).toBe(250);
      expect((await client.command('RCPT TO:<patient@tls13.test>')).code).toBe(250);
      expect((await client.command('DATA')).code).toBe(354);
      client.write(`${message('matrix-sentinel')}.\r\n`);
      expect((await client.readReply()).code).toBe(250);
    } finally {
      client.close();
    }
    await rig.world.mx('mx1.tls13.test').waitFor((m) => m.raw.toString('latin1').includes('<matrix-sentinel@sender.test>'), 30_000);
    expect(rig.world.received().map((m) => m.rcptTo)).toEqual([['patient@tls13.test']]);
    // The untrusted address was refused on every case, never relayed.
    const refusals = rig.relay.logs.filter((l) => l.event === 'command-rejected' && l.ip === UNTRUSTED);
    expect(refusals.length).toBeGreaterThanOrEqual(RECIPIENTS.length * LISTENERS.length);
    expect(rig.relay.logs.some((l) => l.event === 'message-accepted' && l.ip === UNTRUSTED)).toBe(false);
  }, 60_000);
});
