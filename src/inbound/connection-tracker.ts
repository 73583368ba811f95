/**
 * Counts open connections across all listeners, in total and per client IP, so the caps in
 * config.limits hold for the relay as a whole rather than per listener. A slot is taken when the
 * TCP connection is accepted (before any TLS handshake) and the SMTP session later uses the same
 * slot, so a socket is counted once however far it gets.
 *
 * Under load (from `stressLoad` of the total cap) an address that already holds connections gets
 * no more than its fair share, and the last `reserve` slots go only to addresses holding none: a
 * few addresses each staying under the per-IP cap cannot fill the relay for everyone else.
 */

export type AdmitDecision = 'ok' | 'total' | 'per-ip' | 'fair-share';

export interface AdmissionLimits {
  maxTotal: number;
  maxPerIp: number;
  /** Fill fraction of maxTotal from which fair share and the reserve apply (1 or more: never). */
  stressLoad: number;
  /** Slots at the top of maxTotal kept for addresses that hold no connection yet. */
  reserve: number;
}

/** What an address may hold under stress: an equal part of the unreserved slots, counting one more address than now. */
export function fairShare(limits: AdmissionLimits, addresses: number): number {
  return Math.max(1, Math.floor((limits.maxTotal - limits.reserve) / (addresses + 1)));
}

/** Whether one more connection from an address holding `held` may open, given `total` open from `addresses` distinct addresses. */
export function admissionDecision(limits: AdmissionLimits, total: number, held: number, addresses: number): AdmitDecision {
  if (total >= limits.maxTotal) return 'total';
  if (held >= limits.maxPerIp) return 'per-ip';
  if (held > 0 && total >= limits.stressLoad * limits.maxTotal) {
    if (total >= limits.maxTotal - limits.reserve) return 'fair-share';
    if (held >= fairShare(limits, addresses)) return 'fair-share';
  }
  return 'ok';
}

/**
 * A deadline that tightens as the relay fills (as Postfix's stress mode lowers smtpd_timeout):
 * `normal` up to `stressLoad`, then falling linearly to `stressed` at half-way between `stressLoad`
 * and full, and `stressed` from there on. Never longer than `normal`.
 */
export function loadDeadline(load: number, normal: number, stressed: number, stressLoad: number): number {
  const low = Math.min(normal, stressed);
  if (load <= stressLoad || stressLoad >= 1) return normal;
  const floorAt = (1 + stressLoad) / 2;
  const fraction = Math.min(1, (load - stressLoad) / (floorAt - stressLoad));
  return Math.round(normal - (normal - low) * fraction);
}

export class ConnectionTracker {
  private readonly byIp = new Map<string, number>();
  private readonly sessions = new Map<string, string>();
  private limits: AdmissionLimits;

  constructor(maxTotal: number, maxPerIp: number, stress: { stressLoad?: number; reserve?: number } = {}) {
    this.limits = { maxTotal, maxPerIp, stressLoad: stress.stressLoad ?? 1, reserve: stress.reserve ?? 0 };
  }

  /** New caps for connections admitted from now on (a reload); connections already open keep their slots. */
  setLimits(maxTotal: number, maxPerIp: number, stress: { stressLoad?: number; reserve?: number } = {}): void {
    this.limits = { maxTotal, maxPerIp, stressLoad: stress.stressLoad ?? 1, reserve: stress.reserve ?? 0 };
  }

  get total(): number {
    return this.sessions.size;
  }

  /** Open connections as a fraction of the total cap. */
  get load(): number {
    return this.sessions.size / this.limits.maxTotal;
  }

  countFor(ip: string): number {
    return this.byIp.get(ip) ?? 0;
  }

  /** Registers a connection, or says which cap it would break. */
  admit(sessionId: string, ip: string): AdmitDecision {
    if (this.sessions.has(sessionId)) return 'ok';
    const decision = admissionDecision(this.limits, this.sessions.size, this.countFor(ip), this.byIp.size);
    if (decision !== 'ok') return decision;
    this.sessions.set(sessionId, ip);
    this.byIp.set(ip, this.countFor(ip) + 1);
    return 'ok';
  }

  /** Forgets a connection; one never admitted or already released is ignored (so a slot is freed once). */
  release(sessionId: string): void {
    const ip = this.sessions.get(sessionId);
    if (ip === undefined) return;
    this.sessions.delete(sessionId);
    const left = this.countFor(ip) - 1;
    if (left > 0) this.byIp.set(ip, left);
    else this.byIp.delete(ip);
  }
}
