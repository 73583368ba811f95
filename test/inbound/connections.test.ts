import pino from 'pino';
import { networkList, type ListenerConfig } from '../../src/config/schema';
import { ConnectionGuard } from '../../src/inbound/connections';
import type { InboundObserver } from '../../src/inbound/observer';

const LIMITS = {
  maxConnections: 3,
  maxConnectionsPerIp: 2,
  maxAbusePerIp: 1,
  abuseWindow: 60_000,
  maxBadCommands: 2,
  sessionDeadline: 60_000,
  // Fair share and the tightened deadlines from a full relay only: the first tests check the plain caps.
  stressLoad: 1,
  newAddressReserve: 0,
  firstCommandTimeout: 10_000,
  stressFirstCommandTimeout: 3_000,
  socketTimeout: 60_000,
  stressSocketTimeout: 10_000,
  tlsHandshakeTimeout: 5_000,
};

function listener(trustedNetworks: string[]): ListenerConfig {
  return { name: 'smarthost', trustedNetworks } as unknown as ListenerConfig;
}

function setup() {
  const refused: string[] = [];
  const observer: InboundObserver = {
    connectionRefused: (reason) => refused.push(`connection:${reason}`),
    commandRefused: (reason) => refused.push(`command:${reason}`),
    messageRefused: (reason) => refused.push(`message:${reason}`),
    messageAccepted: () => undefined,
    tlsEstablished: () => undefined,
  };
  const guard = new ConnectionGuard(LIMITS, 1, observer, pino({ level: 'silent' }));
  let next = 0;
  const admit = (l: ListenerConfig, ip: string) => {
    const id = `s${next++}`;
    return { id, refused: guard.admit(l, networkList(l.trustedNetworks), id, ip, () => undefined) };
  };
  /** Puts `ip` in the penalty box: one session closed for failed AUTH (maxAbusePerIp is 1). */
  const penalise = (l: ListenerConfig, ip: string) => {
    const { id } = admit(l, ip);
    expect(guard.countAuthFailure(guard.session(id)!)).toBe(true);
    guard.release(id);
  };
  return { guard, refused, admit, penalise };
}

describe('ConnectionGuard', () => {
  afterEach(() => jest.useRealTimers());

  test.each([
    ['IPv4', '127.0.0.0/8', '127.0.0.1'],
    ['IPv6', '::1/128', '::1'],
    ['IPv4-mapped IPv6', '10.0.0.0/8', '::ffff:10.0.0.7'],
  ])('an address in the penalty box is refused with 421, unless it is in a trusted network (%s)', (_family, network, ip) => {
    const { admit, penalise, refused } = setup();
    const untrusted = listener(['192.0.2.0/24']);
    const trusted = listener([network]);
    penalise(untrusted, ip);
    const blocked = admit(untrusted, ip).refused;
    expect(blocked?.responseCode).toBe(421);
    expect(blocked?.message).toBe('4.7.0 Too many failed attempts from your address, try again later');
    expect(refused).toEqual(['connection:abuse']);
    expect(admit(trusted, ip).refused).toBeUndefined();
  });

  test('connection caps: per address, then in total, each with its own 421', () => {
    const { admit, guard, refused } = setup();
    const l = listener([]);
    expect(admit(l, '192.0.2.1').refused).toBeUndefined();
    const second = admit(l, '192.0.2.1');
    expect(second.refused).toBeUndefined();
    expect(admit(l, '192.0.2.1').refused?.message).toBe('4.7.0 Too many connections from your address, try again later');
    expect(admit(l, '192.0.2.2').refused).toBeUndefined();
    expect(admit(l, '192.0.2.3').refused?.message).toBe('4.7.0 Too many connections, try again later');
    expect(refused).toEqual(['connection:max-connections-per-ip', 'connection:max-connections']);
    guard.release(second.id);
    expect(admit(l, '192.0.2.3').refused).toBeUndefined();
  });

  test('refused commands keep their reply until limits.maxBadCommands, then 421 with the reason in the text', () => {
    const { admit, guard, refused } = setup();
    const { id } = admit(listener([]), '192.0.2.1');
    const state = guard.session(id)!;
    const refusal = { reason: 'relay-denied-untrusted-unauthenticated', code: 554, text: '5.7.1 Relay access denied' };
    const first = guard.refuse(state, 'RCPT', refusal);
    expect([first.responseCode, first.message]).toEqual([554, '5.7.1 Relay access denied']);
    const second = guard.refuse(state, 'RCPT', refusal);
    expect([second.responseCode, second.message]).toEqual([421, '4.7.0 Too many errors (Relay access denied), closing connection']);
    expect(refused).toEqual(['command:relay-denied-untrusted-unauthenticated', 'command:relay-denied-untrusted-unauthenticated']);
    // That closed session was a strike: the address is now refused at connect.
    guard.release(id);
    expect(admit(listener([]), '192.0.2.1').refused?.message).toMatch(/Too many failed attempts/);
  });

  test('protocol errors count towards the same limit; unknown sessions are ignored', () => {
    const { admit, guard, refused } = setup();
    const { id } = admit(listener([]), '192.0.2.1');
    expect(guard.protocolError(id, 500, '5.5.2 Error: command not recognized', undefined)).toBe(false);
    expect(guard.protocolError(id, 500, '5.5.2 Error: command not recognized', undefined)).toBe(true);
    expect(guard.protocolError('nobody', 500, 'x', undefined)).toBe(false);
    expect(refused).toEqual(['command:protocol', 'command:protocol']);
  });

  test('the session deadline fires once; release stops it', () => {
    jest.useFakeTimers();
    const guard = new ConnectionGuard(LIMITS, 1, { connectionRefused() {}, commandRefused() {}, messageRefused() {}, messageAccepted() {}, tlsEstablished() {} }, pino({ level: 'silent' }));
    const fired: string[] = [];
    guard.admit(listener([]), networkList([]), 'a', '192.0.2.1', (kind) => kind === 'session' && fired.push('a'));
    guard.admit(listener([]), networkList([]), 'b', '192.0.2.2', (kind) => kind === 'session' && fired.push('b'));
    guard.release('b');
    expect(guard.session('b')).toBeUndefined();
    jest.advanceTimersByTime(LIMITS.sessionDeadline);
    expect(fired).toEqual(['a']);
  });
});
