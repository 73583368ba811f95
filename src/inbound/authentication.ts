import type { SMTPServerAuthentication } from 'smtp-server';
import type { AuthenticatedUser, UserDirectory } from '../auth/users';
import type { Logger } from '../log/logger';
import type { ConnectionGuard, SessionState } from './connections';
import type { InboundObserver } from './observer';
import { reply, safeForLog, type SmtpReplyError } from './replies';

/**
 * AUTH PLAIN/LOGIN against the users file. A wrong password is `535 5.7.8`; after auth.maxFailures
 * of them on one connection it is `421` (and a strike against the address); a user lookup that
 * fails is a temporary `454`.
 */

export type AuthAnswer = { ok: true; user: AuthenticatedUser } | { ok: false; error: SmtpReplyError } | { ok: false; response: { responseCode: number; message: string } };

export interface AuthDeps {
  users: Pick<UserDirectory, 'verify'>;
  guard: Pick<ConnectionGuard, 'countAuthFailure'>;
  observer: InboundObserver;
  log: Logger;
}

export async function authenticate(deps: AuthDeps, state: SessionState, auth: Pick<SMTPServerAuthentication, 'method' | 'username' | 'password'>): Promise<AuthAnswer> {
  const name = auth.username ?? '';
  let user: AuthenticatedUser | undefined;
  try {
    user = auth.method === 'PLAIN' || auth.method === 'LOGIN' ? await deps.users.verify(name, auth.password ?? '') : undefined;
  } catch (err) {
    deps.log.warn({ event: 'auth-error', ip: state.ip, err: (err as Error).message }, 'user lookup failed');
    return { ok: false, error: reply(454, '4.7.0 Temporary authentication failure') };
  }
  if (user) {
    deps.log.info({ event: 'auth', ip: state.ip, listener: state.listener.name, user: user.name, method: auth.method }, 'client authenticated');
    return { ok: true, user };
  }
  const closing = deps.guard.countAuthFailure(state);
  deps.observer.commandRefused('bad-credentials');
  deps.log.info(
    { event: 'command-rejected', command: 'AUTH', reason: 'bad-credentials', code: closing ? 421 : 535, ip: state.ip, listener: state.listener.name, user: safeForLog(name) },
    'authentication failed',
  );
  if (closing) return { ok: false, error: reply(421, '4.7.0 Too many failed authentication attempts, closing connection') };
  return { ok: false, response: { responseCode: 535, message: '5.7.8 Authentication credentials invalid' } };
}
