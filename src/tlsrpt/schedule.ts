import type { Logger } from '../log/logger';
import type { KeyValueCache } from '../store/roles';
import { dayRange, utcDay } from './report';
import type { ReportSource, SendResult } from './send';

export { utcDay };

const DAY_MS = 86_400_000;
/** Claims outlive the day they are about by a margin, so a late instance never sends a day twice. */
const CLAIM_TTL_MS = 3 * DAY_MS;
export const CLAIM_NAMESPACE = 'tlsrpt-claim';

/** The claim key of one report: one instance per (domain, day) sends it. */
export function claimKey(domain: string, day: string): string {
  return `${day} ${domain.toLowerCase()}`;
}

/**
 * Claims the report of (domain, day) for this instance: true for the first to ask, false for every other instance
 * sharing the store (the store's atomic increment decides).
 */
export async function claimReport(claims: Pick<KeyValueCache, 'cacheIncrement'>, domain: string, day: string): Promise<boolean> {
  return (await claims.cacheIncrement(CLAIM_NAMESPACE, claimKey(domain, day), CLAIM_TTL_MS)) === 1;
}

export interface TlsRptSchedulerDeps {
  source: Pick<ReportSource, 'domains'>;
  claims: Pick<KeyValueCache, 'cacheIncrement'>;
  send(domain: string, day: string): Promise<SendResult>;
  logger: Logger;
  /** tlsrpt.maxDelay: the send happens at a random point this long after 00:00 UTC at most. */
  maxDelay: number;
  /** tlsrpt.retrySchedule: waits after each failed send of one report; past the last it is given up. */
  retrySchedule: readonly number[];
  /** How often the scheduler looks whether something is due (default 60 s). */
  tickMs?: number;
  now?: () => number;
  random?: () => number;
}

interface Retry {
  domain: string;
  day: string;
  /** Failed sends so far. */
  failures: number;
  at: number;
}

/**
 * Sends each finished UTC day's reports once, from one instance: after 00:00 UTC plus a random delay (up to
 * maxDelay), every domain with counters for the day is claimed through the store and, when this instance won the
 * claim, sent; failed sends are retried per retrySchedule, then given up (logged). It never touches mail delivery:
 * a report mail is queued like any other message and a failure here only logs.
 */
export class TlsRptScheduler {
  private readonly now: () => number;
  private readonly random: () => number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private started = false;
  private stopped = false;
  /** The day whose reports are due next, and when. */
  private pending: { day: string; dueAt: number; done: boolean } | undefined;
  private readonly retries = new Map<string, Retry>();

  constructor(private readonly deps: TlsRptSchedulerDeps) {
    this.now = deps.now ?? Date.now;
    this.random = deps.random ?? Math.random;
  }

  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.schedule(0);
  }

  /** Stops ticking and waits for a pass in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** When the reports of the day just finished go out (for the log and tests). */
  get nextRun(): { day: string; dueAt: number } | undefined {
    return this.pending && !this.pending.done ? { day: this.pending.day, dueAt: this.pending.dueAt } : undefined;
  }

  private schedule(delay: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.runOnce()
        .catch((err: unknown) => this.deps.logger.error({ event: 'tlsrpt-schedule-failed', err: (err as Error).message }, 'the TLS report schedule failed; trying again later'))
        .finally(() => {
          this.running = undefined;
          this.schedule(this.deps.tickMs ?? 60_000);
        });
    }, delay);
    this.timer.unref();
  }

  /** One pass: the finished day's reports when due, then the retries that are due. */
  async runOnce(): Promise<void> {
    const now = this.now();
    const yesterday = utcDay(now - DAY_MS);
    if (this.pending?.day !== yesterday) {
      const dueAt = dayRange(utcDay(now)).begin + Math.floor(this.random() * this.deps.maxDelay);
      this.pending = { day: yesterday, dueAt, done: false };
      this.deps.logger.info({ event: 'tlsrpt-scheduled', day: yesterday, at: new Date(dueAt).toISOString() }, 'TLS reports of the day scheduled');
    }
    const pending = this.pending;
    if (!pending.done && now >= pending.dueAt) {
      pending.done = true;
      for (const domain of await this.deps.source.domains(pending.day)) {
        if (this.stopped) return;
        if (!(await claimReport(this.deps.claims, domain, pending.day))) {
          this.deps.logger.info({ event: 'tlsrpt-claimed-elsewhere', domain, day: pending.day }, 'another instance sends this TLS report');
          continue;
        }
        await this.attempt({ domain, day: pending.day, failures: 0, at: now });
      }
    }
    for (const retry of [...this.retries.values()]) {
      if (this.stopped) return;
      if (retry.at <= this.now()) await this.attempt(retry);
    }
  }

  private async attempt(entry: Retry): Promise<void> {
    const key = claimKey(entry.domain, entry.day);
    this.retries.delete(key);
    let result: SendResult;
    try {
      result = await this.deps.send(entry.domain, entry.day);
    } catch (err) {
      result = { status: 'failed', retryable: true, reason: (err as Error).message, results: [] };
    }
    if (result.status !== 'failed') {
      if (result.status !== 'sent') this.deps.logger.info({ event: 'tlsrpt-not-sent', domain: entry.domain, day: entry.day, status: result.status, reason: result.reason }, 'no TLS report sent');
      return;
    }
    const failures = entry.failures + 1;
    const wait = this.deps.retrySchedule[failures - 1];
    if (!result.retryable || wait === undefined) {
      this.deps.logger.warn({ event: 'tlsrpt-given-up', domain: entry.domain, day: entry.day, failures, reason: result.reason }, 'TLS report given up: no rua took it');
      return;
    }
    const at = this.now() + wait;
    this.retries.set(key, { domain: entry.domain, day: entry.day, failures, at });
    this.deps.logger.warn(
      { event: 'tlsrpt-retry', domain: entry.domain, day: entry.day, failures, retryAt: new Date(at).toISOString(), reason: result.reason },
      'TLS report not delivered; trying again later',
    );
  }
}
