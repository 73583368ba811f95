import pino from 'pino';
import type { ListenerConfig } from '../../src/config/schema';
import { AuthThrottle } from '../../src/inbound/auth-throttle';
import { authenticate, authzidRefused, userTag, type AuthDeps } from '../../src/inbound/authentication';
import type { SessionState } from '../../src/inbound/connections';
import { noopInboundObserver } from '../../src/inbound/observer';

function session(): SessionState {
  return { listener: { name: 'submission' } as ListenerConfig, ip: '192.0.2.1', badCommands: 0, authFailures: 0, recipients: new Map(), domains: new Set(), storing: false, expired: false };
}

function deps(verify: AuthDeps['users']['verify'], maxFailures = 2, perIp = 10) {
  const refused: string[] = [];
  const strikes: string[] = [];
  const slept: number[] = [];
  const logs: Array<Record<string, unknown>> = [];
  let now = 1_000_000;
  const throttle = new AuthThrottle({ maxFailures: perIp, window: 15 * 60_000, penaltyTime: 60_000, baseDelay: 500, maxDelay: 8_000 }, () => now);
  const d: AuthDeps = {
    users: { verify },
    guard: {
      countAuthFailure(state) {
        state.authFailures++;
        const closing = state.authFailures >= maxFailures;
        if (closing) strikes.push(state.ip);
        return closing;
      },
    },
    throttle,
    observer: { ...noopInboundObserver, commandRefused: (reason) => refused.push(reason) },
    log: pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line) as Record<string, unknown>) }),
    sleep: async (ms) => {
      slept.push(ms);
    },
  };
  return { d, refused, strikes, slept, logs, advance: (ms: number) => (now += ms) };
}

const users: AuthDeps['users']['verify'] = async (name, password) => (name === 'alice' && password === 'secret' ? { name: 'alice' } : undefined);

describe('authenticate (AUTH PLAIN/LOGIN)', () => {
  test('right credentials: the user', async () => {
    const { d, refused } = deps(users);
    expect(await authenticate(d, session(), { method: 'PLAIN', username: 'alice', password: 'secret' })).toEqual({ ok: true, user: { name: 'alice' } });
    expect(await authenticate(d, session(), { method: 'LOGIN', username: 'alice', password: 'secret' })).toEqual({ ok: true, user: { name: 'alice' } });
    expect(refused).toEqual([]);
  });

  test('wrong credentials: 535 5.7.8, then 421 once auth.maxFailures is reached', async () => {
    const { d, refused, strikes } = deps(users);
    const state = session();
    expect(await authenticate(d, state, { method: 'PLAIN', username: 'alice', password: 'wrong' })).toEqual({
      ok: false,
      response: { responseCode: 535, message: '5.7.8 Authentication credentials invalid' },
    });
    const closing = await authenticate(d, state, { method: 'PLAIN', username: 'alice', password: 'wrong' });
    expect(closing.ok).toBe(false);
    const error = (closing as { error: { responseCode: number; message: string } }).error;
    expect([error.responseCode, error.message]).toEqual([421, '4.7.0 Too many failed authentication attempts, closing connection']);
    expect(refused).toEqual(['bad-credentials', 'bad-credentials']);
    expect(strikes).toEqual(['192.0.2.1']);
  });

  test('another method (e.g. XOAUTH2) is never verified: a failed attempt', async () => {
    const verify = jest.fn(users);
    const { d } = deps(verify);
    expect(await authenticate(d, session(), { method: 'XOAUTH2', username: 'alice', password: 'secret' })).toMatchObject({ ok: false, response: { responseCode: 535 } });
    expect(verify).not.toHaveBeenCalled();
  });

  test('a failing user lookup is a temporary 454 and not counted as a failure', async () => {
    const { d, refused } = deps(async () => {
      throw new Error('users file unreadable');
    });
    const state = session();
    const answer = await authenticate(d, state, { method: 'PLAIN', username: 'alice', password: 'secret' });
    const error = (answer as { error: { responseCode: number; message: string } }).error;
    expect([error.responseCode, error.message]).toEqual([454, '4.7.0 Temporary authentication failure']);
    expect(state.authFailures).toBe(0);
    expect(refused).toEqual([]);
  });

  test('each failure from an address waits longer before its 535: 0.5 s, 1 s, 2 s, across sessions', async () => {
    const { d, slept } = deps(users, 100);
    for (let i = 0; i < 3; i++) {
      expect(await authenticate(d, session(), { method: 'LOGIN', username: 'alice', password: 'wrong' })).toMatchObject({ ok: false, response: { responseCode: 535 } });
    }
    expect(slept).toEqual([500, 1_000, 2_000]);
  });

  test('30 sessions x 2 wrong passwords from one address: 421 at the 10th failure, then 454 and the right password fails too until the penalty is over', async () => {
    const verify = jest.fn(users);
    const { d, refused, advance } = deps(verify, 3);
    const codes: number[] = [];
    const code = (a: Awaited<ReturnType<typeof authenticate>>) => (a.ok ? 235 : 'error' in a ? a.error.responseCode : a.response.responseCode);
    for (let s = 0; s < 30; s++) {
      const state = session();
      for (let i = 0; i < 2; i++) codes.push(code(await authenticate(d, state, { method: 'PLAIN', username: 'alice', password: `guess-${s}-${i}` })));
    }
    expect(codes.slice(0, 9)).toEqual(Array(9).fill(535));
    expect(codes[9]).toBe(421);
    expect(codes.slice(10)).toEqual(Array(50).fill(454));
    // In the penalty box the password is not even checked.
    expect(verify).toHaveBeenCalledTimes(10);
    expect(refused.filter((r) => r === 'auth-throttled')).toHaveLength(50);
    expect(code(await authenticate(d, session(), { method: 'PLAIN', username: 'alice', password: 'secret' }))).toBe(454);
    // The same address, another listener, and a trusted one: no exception.
    const trusted = { ...session(), listener: { name: 'smarthost', trustedNetworks: ['192.0.2.0/24'] } as unknown as ListenerConfig };
    expect(code(await authenticate(d, trusted, { method: 'PLAIN', username: 'alice', password: 'secret' }))).toBe(454);
    // Another address is not affected.
    expect(code(await authenticate(d, { ...session(), ip: '192.0.2.9' }, { method: 'PLAIN', username: 'alice', password: 'secret' }))).toBe(235);
    advance(60_000);
    expect(code(await authenticate(d, session(), { method: 'PLAIN', username: 'alice', password: 'secret' }))).toBe(235);
  });

  test('a PLAIN authzid other than the user is 535 without checking the password; empty or equal authzid is fine', async () => {
    const verify = jest.fn(users);
    const { d, refused } = deps(verify, 100);
    expect(await authenticate(d, session(), { method: 'PLAIN', username: 'alice', authcid: 'alice', authzid: 'bob', password: 'secret' })).toEqual({
      ok: false,
      response: { responseCode: 535, message: '5.7.8 Authentication credentials invalid' },
    });
    expect(verify).not.toHaveBeenCalled();
    expect(refused).toEqual(['authzid-mismatch']);
    expect(await authenticate(d, session(), { method: 'PLAIN', username: 'alice', authcid: 'alice', authzid: '', password: 'secret' })).toMatchObject({ ok: true });
    expect(await authenticate(d, session(), { method: 'PLAIN', username: 'alice', authcid: 'alice', authzid: 'alice', password: 'secret' })).toMatchObject({ ok: true });
  });

  test('authzidRefused: only a non-empty PLAIN authzid that differs from the user name', () => {
    expect(authzidRefused({ method: 'PLAIN', username: 'alice', authzid: 'bob' })).toBe(true);
    expect(authzidRefused({ method: 'PLAIN', username: 'alice', authzid: 'Alice' })).toBe(true);
    expect(authzidRefused({ method: 'PLAIN', username: 'alice', authzid: '' })).toBe(false);
    expect(authzidRefused({ method: 'PLAIN', username: 'alice' })).toBe(false);
    // smtp-server names the user by the authzid when the authcid is empty: one identity.
    expect(authzidRefused({ method: 'PLAIN', username: 'alice', authzid: 'alice' })).toBe(false);
    expect(authzidRefused({ method: 'LOGIN', username: 'alice', authzid: 'bob' })).toBe(false);
  });

  test('failed user names are logged only as a keyed hash prefix, never in clear', async () => {
    const { d, logs, advance } = deps(users, 100, 2);
    const secretLooking = 'Tr0ub4dor&3-typed-as-user';
    await authenticate(d, session(), { method: 'PLAIN', username: secretLooking, password: 'x' });
    await authenticate(d, session(), { method: 'PLAIN', username: secretLooking, password: 'x' });
    await authenticate(d, session(), { method: 'PLAIN', username: secretLooking, authzid: 'other', password: 'x' });
    advance(60_000);
    await authenticate(d, session(), { method: 'LOGIN', username: 'x', authzid: undefined, password: 'x' });
    const text = JSON.stringify(logs);
    expect(text).not.toContain('Tr0ub4dor');
    expect(text).not.toContain('typed-as-user');
    const lines = logs.filter((l) => l.event === 'command-rejected');
    expect(lines.length).toBe(4);
    expect(lines.slice(0, 3).map((l) => l.userTag)).toEqual(Array(3).fill(userTag(secretLooking)));
    expect(userTag(secretLooking)).toMatch(/^[0-9a-f]{12}$/);
    expect(lines.every((l) => !('user' in l))).toBe(true);
  });

  test('a right password whose check was under way when the address entered the penalty box is refused too', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const { d } = deps(async (name, password) => {
      await gate;
      return users(name, password);
    }, 100);
    const pending = authenticate(d, session(), { method: 'PLAIN', username: 'alice', password: 'secret' });
    for (let i = 0; i < 10; i++) d.throttle.failure('192.0.2.1');
    release();
    expect(await pending).toMatchObject({ ok: false, error: { responseCode: 454 } });
  });
});
