import { createHash, createHmac, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import type { PortalCachePort } from './deps';

/** Cache namespaces (all 'portal-*'): the state any relay instance on the same store can read. */
export const NS = {
  preauth: 'portal-preauth',
  otp: 'portal-otp',
  otpTries: 'portal-otp-tries',
  otpSends: 'portal-otp-sends',
  failures: 'portal-auth-failures',
  lock: 'portal-lock',
  lockLevel: 'portal-lock-level',
  session: 'portal-session',
} as const;

export const OTP_DIGITS = 8;
export const OTP_VALID_MS = 10 * 60_000;
export const OTP_MAX_TRIES = 5;
export const OTP_MAX_SENDS_PER_HOUR = 3;
/** Failed code or passphrase attempts on one item (within an hour) that lock it. */
export const LOCK_AFTER_FAILURES = 10;
/** First lockout; each further lockout within a day doubles it, up to a day. */
export const LOCK_BASE_MS = 15 * 60_000;
export const LOCK_MAX_MS = 24 * 3_600_000;
/** How long a browser may take between pressing "Continue" and signing in. */
export const PREAUTH_MS = 60 * 60_000;

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export function randomId(): string {
  return randomBytes(32).toString('base64url');
}

/** SHA-256 of the User-Agent, first 16 hex characters. */
export function uaHash(ua: string | undefined): string | null {
  return ua ? createHash('sha256').update(ua).digest('hex').slice(0, 16) : null;
}

export function tokenHashOf(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export interface PreAuth {
  itemId: string;
  tokenHash: string;
  createdAt: number;
}

export interface OtpRecord {
  /** HMAC-SHA256 of the code keyed by the pre-auth id: the code itself is never stored. */
  hash: string;
  codeId: string;
  itemId: string;
  expiresAt: number;
}

export interface Session {
  itemId: string;
  tokenHash: string;
  createdAt: number;
  lastSeen: number;
}

function parse<T>(value: string | undefined): T | undefined {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value) as T;
  } catch {
    return undefined;
  }
}

function codeHash(preauthId: string, code: string): string {
  return createHmac('sha256', preauthId).update(code).digest('hex');
}

export type OtpCheck = 'ok' | 'wrong' | 'none' | 'expired' | 'exhausted';

/** Pre-authentication state, one-time codes, failure counters, lockouts and sessions, over the shared cache. */
export class PortalState {
  constructor(
    private readonly cache: PortalCachePort,
    private readonly now: () => number,
    private readonly sessionIdle: number,
    private readonly sessionMax: number,
  ) {}

  async createPreAuth(itemId: string, tokenHash: string): Promise<string> {
    const id = randomId();
    const value: PreAuth = { itemId, tokenHash, createdAt: this.now() };
    await this.cache.cacheSet(NS.preauth, id, JSON.stringify(value), PREAUTH_MS);
    return id;
  }

  async preAuth(id: string | undefined): Promise<PreAuth | undefined> {
    if (!id) return undefined;
    const value = parse<PreAuth>(await this.cache.cacheGet(NS.preauth, id));
    if (!value || this.now() - value.createdAt > PREAUTH_MS) return undefined;
    return value;
  }

  async dropPreAuth(id: string): Promise<void> {
    await this.cache.cacheDelete(NS.preauth, id);
    await this.cache.cacheDelete(NS.otp, id);
  }

  /** Counts a code request for the item; false once OTP_MAX_SENDS_PER_HOUR were sent this hour. */
  async allowSend(itemId: string): Promise<boolean> {
    return (await this.cache.cacheIncrement(NS.otpSends, itemId, HOUR)) <= OTP_MAX_SENDS_PER_HOUR;
  }

  /** A fresh code bound to this pre-auth id (a new one replaces the previous one). */
  async newCode(preauthId: string, itemId: string): Promise<string> {
    const code = String(randomInt(0, 10 ** OTP_DIGITS)).padStart(OTP_DIGITS, '0');
    const record: OtpRecord = { hash: codeHash(preauthId, code), codeId: randomId(), itemId, expiresAt: this.now() + OTP_VALID_MS };
    await this.cache.cacheSet(NS.otp, preauthId, JSON.stringify(record), OTP_VALID_MS);
    return code;
  }

  async hasCode(preauthId: string): Promise<boolean> {
    const record = parse<OtpRecord>(await this.cache.cacheGet(NS.otp, preauthId));
    return record !== undefined && record.expiresAt > this.now();
  }

  /** Checks a code for this pre-auth id: single use, OTP_MAX_TRIES tries, OTP_VALID_MS validity. */
  async checkCode(preauthId: string, itemId: string, code: string): Promise<OtpCheck> {
    const record = parse<OtpRecord>(await this.cache.cacheGet(NS.otp, preauthId));
    if (!record || record.itemId !== itemId) return 'none';
    if (record.expiresAt <= this.now()) {
      await this.cache.cacheDelete(NS.otp, preauthId);
      return 'expired';
    }
    const tries = await this.cache.cacheIncrement(NS.otpTries, record.codeId, OTP_VALID_MS);
    if (tries > OTP_MAX_TRIES) {
      await this.cache.cacheDelete(NS.otp, preauthId);
      return 'exhausted';
    }
    const expected = Buffer.from(record.hash, 'hex');
    const given = Buffer.from(codeHash(preauthId, code.replace(/\s+/g, '')), 'hex');
    if (!timingSafeEqual(expected, given)) {
      if (tries === OTP_MAX_TRIES) await this.cache.cacheDelete(NS.otp, preauthId);
      return 'wrong';
    }
    await this.cache.cacheDelete(NS.otp, preauthId);
    return 'ok';
  }

  /** The time until which the item is locked, or undefined. */
  async lockedUntil(itemId: string): Promise<number | undefined> {
    const lock = parse<{ until: number }>(await this.cache.cacheGet(NS.lock, itemId));
    return lock && lock.until > this.now() ? lock.until : undefined;
  }

  /** Counts a failed attempt; returns the lock's end when this failure locks the item. */
  async recordFailure(itemId: string): Promise<number | undefined> {
    const failures = await this.cache.cacheIncrement(NS.failures, itemId, HOUR);
    if (failures < LOCK_AFTER_FAILURES) return undefined;
    await this.cache.cacheDelete(NS.failures, itemId);
    const level = await this.cache.cacheIncrement(NS.lockLevel, itemId, DAY);
    const delay = Math.min(LOCK_BASE_MS * 2 ** (level - 1), LOCK_MAX_MS);
    const until = this.now() + delay;
    await this.cache.cacheSet(NS.lock, itemId, JSON.stringify({ until }), delay);
    return until;
  }

  async clearFailures(itemId: string): Promise<void> {
    await this.cache.cacheDelete(NS.failures, itemId);
  }

  async createSession(itemId: string, tokenHash: string): Promise<string> {
    const id = randomId();
    const now = this.now();
    const session: Session = { itemId, tokenHash, createdAt: now, lastSeen: now };
    await this.cache.cacheSet(NS.session, id, JSON.stringify(session), this.sessionIdle);
    return id;
  }

  /** The live session (idle and hard cap checked against the clock); touching it extends the idle time. */
  async session(id: string | undefined, touch: boolean): Promise<Session | undefined> {
    if (!id) return undefined;
    const session = parse<Session>(await this.cache.cacheGet(NS.session, id));
    if (!session) return undefined;
    const now = this.now();
    if (now - session.lastSeen >= this.sessionIdle || now - session.createdAt >= this.sessionMax) {
      await this.cache.cacheDelete(NS.session, id);
      return undefined;
    }
    if (touch) {
      session.lastSeen = now;
      const ttl = Math.min(this.sessionIdle, session.createdAt + this.sessionMax - now);
      await this.cache.cacheSet(NS.session, id, JSON.stringify(session), ttl);
    }
    return session;
  }

  async endSession(id: string): Promise<void> {
    await this.cache.cacheDelete(NS.session, id);
  }
}
