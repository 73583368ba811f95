import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { ADMIN_SCOPES, LEGACY_ADMIN_SCOPES, type AdminScope, type Config } from '../config/schema';

export { ADMIN_SCOPES, LEGACY_ADMIN_SCOPES, type AdminScope };

export interface AdminToken {
  name: string;
  token: string;
  /** Without it: LEGACY_ADMIN_SCOPES. */
  scopes?: readonly AdminScope[] | undefined;
}

/** Who a request authenticated as: the token's name (the audit trail's actor) and what it may do. */
export interface TokenIdentity {
  name: string;
  scopes: ReadonlySet<AdminScope>;
}

/**
 * What a route needs, declared once per route (`config: { scope }`) and checked before the handler:
 * one scope, or a list of which any one is enough; `token` is any valid token, whatever its scopes;
 * `public` needs none and looks at no token; `optional` needs none but, when a token is given, checks it
 * (and counts a wrong one) so the handler can show more to it. A function is asked on every request
 * with the running admin config (e.g. /metrics is public with admin.publicMetrics).
 */
export type RouteScope = AdminScope | readonly AdminScope[] | 'token' | 'public' | 'optional';
export type ScopeDeclaration = RouteScope | ((admin: Config['admin']) => RouteScope);

export function isScopeDeclaration(value: unknown): value is ScopeDeclaration {
  if (typeof value === 'function') return true;
  if (typeof value === 'string') return value === 'token' || value === 'public' || value === 'optional' || (ADMIN_SCOPES as readonly string[]).includes(value);
  return Array.isArray(value) && value.length > 0 && value.every((v) => (ADMIN_SCOPES as readonly unknown[]).includes(v));
}

export function scopesOf(token: Pick<AdminToken, 'scopes'>): ReadonlySet<AdminScope> {
  return new Set(token.scopes ?? LEGACY_ADMIN_SCOPES);
}

/** Tokens configured without `scopes`, which get LEGACY_ADMIN_SCOPES. */
export function legacyTokens(tokens: readonly AdminToken[]): string[] {
  return tokens.filter((t) => t.scopes === undefined).map((t) => t.name);
}

/**
 * The scope a token lacks for a route, or undefined when it may use it. For a list, the first entry is the
 * one named (the list says which scopes are enough).
 */
export function missingScope(required: AdminScope | readonly AdminScope[], granted: ReadonlySet<AdminScope>): AdminScope | undefined {
  const anyOf: readonly AdminScope[] = typeof required === 'string' ? [required] : required;
  return anyOf.some((s) => granted.has(s)) ? undefined : anyOf[0];
}

const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();

/**
 * Finds the token a request's `Authorization: Bearer …` header carries. Compares SHA-256 digests in
 * constant time and checks every token, so timing tells nothing about lengths or which token nearly matched.
 */
export function tokenMatcher(tokens: readonly AdminToken[]): (authorization: string | undefined) => TokenIdentity | undefined {
  const known = tokens.map((t) => ({ identity: { name: t.name, scopes: scopesOf(t) }, digest: digest(t.token) }));
  return (authorization) => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    if (!match) return undefined;
    const presented = digest(match[1]!);
    let found: TokenIdentity | undefined;
    for (const token of known) {
      if (timingSafeEqual(presented, token.digest) && found === undefined) found = token.identity;
    }
    return found;
  };
}

/**
 * A tokenMatcher over whatever token list `tokens()` returns now (the running config, which a reload
 * replaces): rebuilt when the list changes, so a token removed by a reload stops working at once.
 */
export function liveTokenMatcher(tokens: () => readonly AdminToken[]): (authorization: string | undefined) => TokenIdentity | undefined {
  let source: readonly AdminToken[] | undefined;
  let match: ReturnType<typeof tokenMatcher> = () => undefined;
  return (authorization) => {
    const current = tokens();
    if (current !== source) {
      source = current;
      match = tokenMatcher(current);
    }
    return match(authorization);
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
