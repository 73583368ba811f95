/**
 * A per-client-IP penalty box: sessions that end for failed AUTH or junk commands are strikes, and
 * an address with too many strikes inside the window is refused at connect (421) until its strikes
 * age out. Caps per connection alone let a client reconnect and guess on.
 */
export class AbuseThrottle {
  private readonly strikes = new Map<string, number[]>();

  constructor(
    private maxStrikes: number,
    private windowMs: number,
    /** Bound on remembered addresses, so a flood of sources cannot grow this without limit. */
    private readonly maxAddresses = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** New thresholds (a reload); the strikes already counted stay. */
  configure(maxStrikes: number, windowMs: number): void {
    this.maxStrikes = maxStrikes;
    this.windowMs = windowMs;
  }

  strike(ip: string): void {
    const recent = this.recent(ip);
    recent.push(this.now());
    this.strikes.delete(ip); // re-insert: Map order doubles as least-recently-struck first
    this.strikes.set(ip, recent);
    while (this.strikes.size > this.maxAddresses) this.strikes.delete(this.strikes.keys().next().value!);
  }

  blocked(ip: string): boolean {
    return this.recent(ip).length >= this.maxStrikes;
  }

  private recent(ip: string): number[] {
    const since = this.now() - this.windowMs;
    const kept = (this.strikes.get(ip) ?? []).filter((at) => at > since);
    if (kept.length === 0) this.strikes.delete(ip);
    else this.strikes.set(ip, kept);
    return kept;
  }
}
