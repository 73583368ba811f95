import pino from 'pino';
import type { ListenerConfig } from '../../src/config/schema';
import { authenticate, type AuthDeps } from '../../src/inbound/authentication';
import type { SessionState } from '../../src/inbound/connections';
import { noopInboundObserver } from '../../src/inbound/observer';

function session(): SessionState {
  return { listener: { name: 'submission' } as ListenerConfig, ip: '192.0.2.1', badCommands: 0, authFailures: 0, recipients: new Map(), domains: new Set(), storing: false, expired: false };
}

function deps(verify: AuthDeps['users']['verify'], maxFailures = 2) {
  const refused: string[] = [];
  const strikes: string[] = [];
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
    observer: { ...noopInboundObserver, commandRefused: (reason) => refused.push(reason) },
    log: pino({ level: 'silent' }),
  };
  return { d, refused, strikes };
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
});
