/**
 * Counts open SMTP sessions across all listeners, in total and per client IP, so the caps in
 * config.limits hold for the relay as a whole rather than per listener.
 */
export class ConnectionTracker {
  private readonly byIp = new Map<string, number>();
  private readonly sessions = new Map<string, string>();

  constructor(
    private readonly maxTotal: number,
    private readonly maxPerIp: number,
  ) {}

  get total(): number {
    return this.sessions.size;
  }

  countFor(ip: string): number {
    return this.byIp.get(ip) ?? 0;
  }

  /** Registers a session, or says which cap it would break. */
  admit(sessionId: string, ip: string): 'ok' | 'total' | 'per-ip' {
    if (this.sessions.has(sessionId)) return 'ok';
    if (this.sessions.size >= this.maxTotal) return 'total';
    if (this.countFor(ip) >= this.maxPerIp) return 'per-ip';
    this.sessions.set(sessionId, ip);
    this.byIp.set(ip, this.countFor(ip) + 1);
    return 'ok';
  }

  /** Forgets a session; a session that was never admitted is ignored. */
  release(sessionId: string): void {
    const ip = this.sessions.get(sessionId);
    if (ip === undefined) return;
    this.sessions.delete(sessionId);
    const left = this.countFor(ip) - 1;
    if (left > 0) this.byIp.set(ip, left);
    else this.byIp.delete(ip);
  }
}
