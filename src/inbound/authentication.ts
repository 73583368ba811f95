import { createHmac, randomBytes } from 'node:crypto';
import type { SMTPServerAuthentication } from 'smtp-server';
import type { AuthenticatedUser, UserDirectory } from '../auth/users';
import type { Logger } from '../log/logger';
import type { AuthThrottle } from './auth-throttle';
import type { ConnectionGuard, SessionState } from './connections';
import type { InboundObserver } from './observer';
import { reply, type SmtpReplyError } from './replies';

/**
 * AUTH PLAIN/LOGIN against the users file. A wrong password is `535 5.7.8`, answered after the
 * address's growing delay (auth-throttle.ts); after auth.maxFailures of them on one connection it is
 * `421` (and a strike against the address); an address past auth.maxFailuresPerIp is in the penalty
 * box: AUTH gets `454 4.7.0` without the password being checked, and the failure that puts it there
 * gets `421`. A PLAIN authorization identity other than the authentication identity is `535` (no
 * user may act for another). A user lookup that fails is a temporary `454`.
 */

export type AuthAnswer = { ok: true; user: AuthenticatedUser } | { ok: false; error: SmtpReplyError } | { ok: false; response: { responseCode: number; message: string } };

export interface AuthDeps {
  users: Pick<UserDirectory, 'verify'>;
  guard: Pick<ConnectionGuard, 'countAuthFailure'>;
  throttle: Pick<AuthThrottle, 'penaltyLeft' | 'failure'>;
  observer: InboundObserver;
  log: Logger;
  /** Waits before a failure's reply (injected by tests). */
  sleep?: (ms: number) => Promise<void>;
}

export type AuthInput = Pick<SMTPServerAuthentication, 'method' | 'username' | 'password' | 'authzid' | 'authcid'>;

const INVALID = { responseCode: 535, message: '5.7.8 Authentication credentials invalid' };

/**
 * RFC 4616: the authorization identity is empty or the authentication identity itself; Sealgate has
 * no proxy authorization. smtp-server takes the authzid as the user name when the authcid is empty
 * (a common client quirk), so that case names one identity and is allowed.
 */
export function authzidRefused(auth: Pick<AuthInput, 'method' | 'username' | 'authzid'>): boolean {
  if (auth.method !== 'PLAIN') return false;
  const authzid = auth.authzid ?? '';
  return authzid !== '' && authzid !== (auth.username ?? '');
}

// A per-process key: log readers can tell repeated names apart within a run, but cannot test a guess
// (failed user names are often passwords typed into the wrong field, and SHA-256 alone is cheap to guess).
const USER_TAG_KEY = randomBytes(32);

/** A failed user name as it may appear in a log line: the first 12 hex digits of HMAC-SHA-256 under a per-process key. */
export function userTag(name: string): string {
  return createHmac('sha256', USER_TAG_KEY).update(name, 'utf8').digest('hex').slice(0, 12);
}

const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms).unref());

export async function authenticate(deps: AuthDeps, state: SessionState, auth: AuthInput): Promise<AuthAnswer> {
  const name = auth.username ?? '';
  const where = { ip: state.ip, listener: state.listener.name, method: auth.method };
  const throttled = (): AuthAnswer | undefined => {
    const penalty = deps.throttle.penaltyLeft(state.ip);
    if (penalty <= 0) return undefined;
    const closing = deps.guard.countAuthFailure(state);
    deps.observer.commandRefused('auth-throttled');
    deps.log.info(
      { event: 'command-rejected', command: 'AUTH', reason: 'auth-throttled', code: closing ? 421 : 454, ...where, userTag: userTag(name), penaltyLeft: penalty },
      'authentication refused: too many failures from this address',
    );
    if (closing) return { ok: false, error: reply(421, '4.7.0 Too many failed authentication attempts, closing connection') };
    return { ok: false, error: reply(454, '4.7.0 Too many failed authentication attempts from your address, try again later') };
  };
  // Not checked: in the penalty box the right password must not work either.
  const before = throttled();
  if (before) return before;
  if (authzidRefused(auth)) return fail(deps, state, auth, 'authzid-mismatch');
  let user: AuthenticatedUser | undefined;
  try {
    user = auth.method === 'PLAIN' || auth.method === 'LOGIN' ? await deps.users.verify(name, auth.password ?? '') : undefined;
  } catch (err) {
    deps.log.warn({ event: 'auth-error', ip: state.ip, err: (err as Error).message }, 'user lookup failed');
    return { ok: false, error: reply(454, '4.7.0 Temporary authentication failure') };
  }
  // Concurrent guesses from the same address may have filled the penalty box while this password was checked.
  const after = user ? throttled() : undefined;
  if (after) return after;
  if (user) {
    deps.log.info({ event: 'auth', ip: state.ip, listener: state.listener.name, user: user.name, method: auth.method }, 'client authenticated');
    return { ok: true, user };
  }
  return fail(deps, state, auth, 'bad-credentials');
}

async function fail(deps: AuthDeps, state: SessionState, auth: AuthInput, reason: 'bad-credentials' | 'authzid-mismatch'): Promise<AuthAnswer> {
  const verdict = deps.throttle.failure(state.ip);
  const closingSession = deps.guard.countAuthFailure(state);
  const closing = closingSession || verdict.penalized;
  deps.observer.commandRefused(reason);
  deps.log.info(
    {
      event: 'command-rejected',
      command: 'AUTH',
      reason,
      code: closing ? 421 : 535,
      ip: state.ip,
      listener: state.listener.name,
      method: auth.method,
      userTag: userTag(auth.username ?? ''),
      failures: verdict.failures,
      delay: verdict.delay,
    },
    'authentication failed',
  );
  if (verdict.penalized) {
    deps.log.warn({ event: 'auth-penalty', ip: state.ip, listener: state.listener.name, failures: verdict.failures }, 'too many failed authentications from this address: AUTH refused for a while');
  }
  await (deps.sleep ?? defaultSleep)(verdict.delay);
  if (closing) return { ok: false, error: reply(421, '4.7.0 Too many failed authentication attempts, closing connection') };
  return { ok: false, response: INVALID };
}
