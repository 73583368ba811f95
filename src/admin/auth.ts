import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';

export interface AdminToken {
  name: string;
  token: string;
}

const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();

/**
 * Finds the token a request's `Authorization: Bearer …` header carries. Compares SHA-256 digests in
 * constant time and checks every token, so timing tells nothing about lengths or which token nearly matched.
 */
export function tokenMatcher(tokens: readonly AdminToken[]): (authorization: string | undefined) => string | undefined {
  const known = tokens.map((t) => ({ name: t.name, digest: digest(t.token) }));
  return (authorization) => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    if (!match) return undefined;
    const presented = digest(match[1]!);
    let found: string | undefined;
    for (const token of known) {
      if (timingSafeEqual(presented, token.digest) && found === undefined) found = token.name;
    }
    return found;
  };
}

/** Loopback only: 127.0.0.0/8, ::1, their IPv4-mapped form, and the name localhost. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (bare === 'localhost') return true;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  if (isIP(bare) === 6) return bare === '::1' || /^::ffff:127\./.test(bare);
  return false;
}
