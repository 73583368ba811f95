/**
 * Failed AUTH per client address, across sessions and listeners. A per-session cap alone lets a
 * client reconnect and guess on, so every failure counts against the address:
 *
 * - each failure is answered after a delay that doubles with the address's recent failures
 *   (base, 2×base, 4×base, … capped at maxDelay), which slows a serial guesser down;
 * - maxFailures failures inside the window put the address in a penalty box for penaltyTime:
 *   AUTH is then refused without looking at the password, so the right password from that address
 *   only works once the penalty is over. Trusted networks get no exception.
 *
 * Memory is bounded: at most maxAddresses addresses are remembered (the least recently failed go first),
 * and each keeps at most maxFailures timestamps.
 */

export interface AuthThrottleLimits {
  /** Failures inside `window` that put the address in the penalty box. */
  maxFailures: number;
  window: number;
  /** How long the penalty box lasts once entered. */
  penaltyTime: number;
  /** Delay before answering the first failure; each further failure in the window doubles it. */
  baseDelay: number;
  /** Upper bound of that delay. */
  maxDelay: number;
  maxAddresses?: number;
}

export interface AuthFailureVerdict {
  /** Milliseconds to wait before answering. */
  delay: number;
  /** This failure put the address in the penalty box. */
  penalized: boolean;
  /** Failures of this address inside the window, this one included. */
  failures: number;
}

interface AddressRecord {
  failures: number[];
  penaltyUntil: number;
}

export class AuthThrottle {
  private readonly addresses = new Map<string, AddressRecord>();
  private readonly maxAddresses: number;

  constructor(
    private limits: AuthThrottleLimits,
    private readonly now: () => number = Date.now,
  ) {
    this.maxAddresses = limits.maxAddresses ?? 10_000;
  }

  /** New thresholds and delays (a reload); the failures already counted and penalties already running stay. */
  configure(limits: Omit<AuthThrottleLimits, 'maxAddresses'>): void {
    this.limits = { ...limits, maxAddresses: this.maxAddresses };
  }

  /** Milliseconds of penalty left for this address (0: AUTH may be tried). */
  penaltyLeft(ip: string): number {
    const record = this.addresses.get(ip);
    if (!record) return 0;
    return Math.max(0, record.penaltyUntil - this.now());
  }

  /** Records one failed AUTH and says how long to wait before the reply and whether the address is now penalised. */
  failure(ip: string): AuthFailureVerdict {
    const at = this.now();
    const record = this.addresses.get(ip) ?? { failures: [], penaltyUntil: 0 };
    const since = at - this.limits.window;
    record.failures = record.failures.filter((t) => t > since);
    record.failures.push(at);
    // Only the last maxFailures timestamps can matter for the threshold.
    if (record.failures.length > this.limits.maxFailures) record.failures.splice(0, record.failures.length - this.limits.maxFailures);
    const failures = record.failures.length;
    const penalized = failures >= this.limits.maxFailures && record.penaltyUntil <= at;
    if (penalized) record.penaltyUntil = at + this.limits.penaltyTime;
    this.addresses.delete(ip); // re-insert: Map order doubles as least-recently-failed first
    this.addresses.set(ip, record);
    this.forgetOldest();
    return { delay: this.delayFor(failures), penalized, failures };
  }

  /** Addresses currently remembered (for tests and bounds). */
  get size(): number {
    return this.addresses.size;
  }

  private delayFor(failures: number): number {
    const { baseDelay, maxDelay } = this.limits;
    if (baseDelay <= 0) return 0;
    // 2 ** 30 is far past any sane maxDelay; the cap keeps the exponent from overflowing.
    return Math.min(maxDelay, baseDelay * 2 ** Math.min(failures - 1, 30));
  }

  private forgetOldest(): void {
    while (this.addresses.size > this.maxAddresses) this.addresses.delete(this.addresses.keys().next().value!);
  }
}
