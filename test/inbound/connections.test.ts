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

  test('open connections are counted per listener from accept to close, each slot once, refusals never', () => {
    const { guard } = setup();
    const smarthost = listener([]);
    const submission = { name: 'submission', trustedNetworks: [] } as unknown as ListenerConfig;
    expect(guard.accept(smarthost, '127.0.0.2', 1001)).toBeUndefined();
    expect(guard.accept(submission, '127.0.0.3', 1002)).toBeUndefined();
    expect(Object.fromEntries(guard.openConnections())).toEqual({ smarthost: 1, submission: 1 });
    // The session on the accepted socket keeps its slot: still one.
    expect(guard.admit(smarthost, networkList([]), 'a', '127.0.0.2', () => undefined, 1001)).toBeUndefined();
    expect(guard.openConnections().get('smarthost')).toBe(1);
    // A session without an accept seen takes a slot of its own.
    expect(guard.admit(submission, networkList([]), 'b', '127.0.0.4', () => undefined)).toBeUndefined();
    expect(guard.openConnections().get('submission')).toBe(2);
    // Over the total cap (3): refused, not counted.
    expect(guard.accept(smarthost, '127.0.0.5', 1003)?.responseCode).toBe(421);
    expect(guard.openConnections().get('smarthost')).toBe(1);
    guard.release('a');
    guard.socketClosed(smarthost, '127.0.0.2', 1001);
    guard.release('b');
    guard.socketClosed(submission, '127.0.0.3', 1002);
    expect(Object.fromEntries(guard.openConnections())).toEqual({});
  });

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

describe('ConnectionGuard: counting from TCP accept', () => {
  afterEach(() => jest.useRealTimers());

  function stressed(overrides: Partial<typeof LIMITS> = {}) {
    const refused: string[] = [];
    const observer: InboundObserver = {
      connectionRefused: (reason) => refused.push(reason),
      commandRefused: () => undefined,
      messageRefused: () => undefined,
      messageAccepted: () => undefined,
      tlsEstablished: () => undefined,
    };
    const limits = { ...LIMITS, maxConnections: 10, maxConnectionsPerIp: 4, stressLoad: 0.5, newAddressReserve: 0.2, ...overrides };
    return { guard: new ConnectionGuard(limits, 1, observer, pino({ level: 'silent' })), refused };
  }

  test('a socket counted at accept is the same slot its session uses, and it is freed once', () => {
    const { guard } = stressed();
    const l = listener([]);
    expect(guard.accept(l, '::ffff:192.0.2.1', 40001)).toBeUndefined();
    expect(guard.load).toBeCloseTo(0.1);
    // The session on that socket (smtp-server reports the IPv4 form) takes no second slot.
    expect(guard.admit(l, networkList([]), 'sess', '192.0.2.1', () => undefined, 40001)).toBeUndefined();
    expect(guard.load).toBeCloseTo(0.1);
    guard.socketClosed(l, '::ffff:192.0.2.1', 40001);
    expect(guard.load).toBe(0);
    guard.release('sess');
    guard.release('sess');
    expect(guard.load).toBe(0);
    // Released by the session first (the raw socket's listeners were dropped at STARTTLS): also once.
    guard.accept(l, '192.0.2.1', 40002);
    guard.admit(l, networkList([]), 'sess2', '192.0.2.1', () => undefined, 40002);
    guard.release('sess2');
    guard.socketClosed(l, '192.0.2.1', 40002);
    expect(guard.load).toBe(0);
  });

  test('sockets that never reach a session (no TLS handshake) count against the per-IP cap', () => {
    const { guard, refused } = stressed({ stressLoad: 1 });
    const l = listener([]);
    for (let port = 1; port <= 4; port++) expect(guard.accept(l, '192.0.2.1', port)).toBeUndefined();
    const over = guard.accept(l, '192.0.2.1', 5);
    expect([over?.responseCode, over?.message]).toEqual([421, '4.7.0 Too many connections from your address, try again later']);
    expect(refused).toEqual(['max-connections-per-ip']);
    guard.socketClosed(l, '192.0.2.1', 1);
    expect(guard.accept(l, '192.0.2.1', 6)).toBeUndefined();
  });

  test('under load an address at its fair share is refused while a new address gets in', () => {
    const { guard, refused } = stressed();
    const l = listener([]);
    // 10 slots, 2 reserved: from 5 open connections an address holds at most floor(8 / (addresses + 1)).
    for (let port = 1; port <= 4; port++) guard.accept(l, '192.0.2.1', port);
    for (let port = 1; port <= 2; port++) guard.accept(l, '192.0.2.2', port);
    expect(guard.accept(l, '192.0.2.2', 3)?.responseCode).toBe(421);
    expect(refused).toEqual(['fair-share']);
    expect(guard.accept(l, '192.0.2.3', 1)).toBeUndefined();
  });

  test('the first-command deadline fires unless a command starts, and is shorter under load', () => {
    jest.useFakeTimers();
    const { guard } = stressed({ maxConnectionsPerIp: 10, newAddressReserve: 0 });
    const l = listener([]);
    const fired: string[] = [];
    guard.admit(l, networkList([]), 'quiet', '192.0.2.1', (kind) => fired.push(`quiet:${kind}`));
    guard.admit(l, networkList([]), 'talks', '192.0.2.2', (kind) => fired.push(`talks:${kind}`));
    guard.commandStarted('talks');
    jest.advanceTimersByTime(LIMITS.firstCommandTimeout);
    expect(fired).toEqual(['quiet:first-command']);
    for (let i = 0; i < 6; i++) guard.admit(l, networkList([]), `s${i}`, `198.51.100.${i}`, () => undefined);
    // 8 of 10 open: past the point where the stressed value applies.
    expect(guard.currentFirstCommandTimeout).toBe(LIMITS.stressFirstCommandTimeout);
    const late: string[] = [];
    guard.admit(l, networkList([]), 'late', '192.0.2.4', (kind) => late.push(kind));
    jest.advanceTimersByTime(LIMITS.stressFirstCommandTimeout);
    expect(late).toEqual(['first-command']);
  });

  test('the idle timeout follows the load, and the listeners are told of each change', () => {
    const { guard } = stressed({ maxConnectionsPerIp: 10, newAddressReserve: 0 });
    const l = listener([]);
    const told: number[] = [];
    guard.onIdleTimeoutChange((ms) => told.push(ms));
    for (let i = 1; i <= 8; i++) expect(guard.accept(l, `198.51.100.${i}`, 25)).toBeUndefined();
    expect(guard.currentIdleTimeout).toBe(LIMITS.stressSocketTimeout);
    for (let i = 1; i <= 8; i++) guard.socketClosed(l, `198.51.100.${i}`, 25);
    expect(guard.currentIdleTimeout).toBe(LIMITS.socketTimeout);
    expect(told[told.length - 1]).toBe(LIMITS.socketTimeout);
    expect(told).toContain(LIMITS.stressSocketTimeout);
  });
});
