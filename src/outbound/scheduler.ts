import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log/logger';
import { isStoreError, LeaseLostError, type ClaimedJob, type JobResult, type Store } from '../store/types';
import { finishedNotices, noopNoticeObserver, type NoticeObserver } from './notice-observer';
import { retryWhileUnavailable, STORE_RETRY_MS } from './store-retry';

/**
 * Whether a failed completeJob may succeed later (store unreachable, contention) or no longer matters (lease
 * lost, message deleted): those keep the lease-expiry retry. Anything else will fail again the same way.
 */
function retryable(err: unknown): boolean {
  return err instanceof LeaseLostError || isStoreError(err, 'unavailable', 'contention', 'not-found', 'lease-lost');
}

/** After aborting, how long deliveries get to record their result before their leases are handed back. */
const ABORT_SETTLE_MS = 3_000;

export interface SchedulerOptions {
  store: Store;
  logger: Logger;
  /** Lease owner token: unique per relay process. */
  owner: string;
  /** Jobs in flight at once in this process. */
  concurrency: number;
  /** Jobs in flight at once per recipient domain. */
  perDestination: number;
  leaseMs: number;
  /** How long to wait between claims when nothing is due (an enqueue kicks it sooner). */
  idlePollMs: number;
  /** Delivers one job; must not throw for delivery failures (those are results). */
  deliver: (claimed: ClaimedJob, signal: AbortSignal) => Promise<JobResult>;
  /** Result for a job whose delivery threw unexpectedly: everything pending deferred. */
  onCrash: (claimed: ClaimedJob, error: Error) => JobResult;
  /**
   * Called with a result just before the store records it: writes its evidence, durable before the outcome is
   * recorded. A result whose evidence cannot be written is never recorded: it is held (the lease kept alive) and
   * the write retried for up to `evidenceHoldMs`, then left unrecorded, so the lease expires and the job is
   * retried (an outcome without its evidence record is what the evidence log exists to rule out).
   */
  beforeRecord?: (claimed: ClaimedJob, result: JobResult) => void | Promise<void>;
  /** How long a result is held while its evidence cannot be written (default STORE_RETRY_MS). */
  evidenceHoldMs?: number;
  /** Called once the store has recorded a result (metrics). */
  onSettled?: (claimed: ClaimedJob, result: JobResult) => void;
  /** Told of every portal notice recipient whose outcome became final (delivered or bounced). */
  noticeObserver?: NoticeObserver;
}

/**
 * Claims due jobs under a lease, runs them within global and per-destination limits, keeps their
 * leases alive while they run, and settles each with the store. Several processes can run one
 * each against a shared store: the store's lease is what keeps them from taking the same job.
 */
export class Scheduler {
  private running = false;
  private loop: Promise<void> | undefined;
  private readonly active = new Map<string, Promise<void>>();
  private readonly perDomain = new Map<string, number>();
  private readonly waiting: ClaimedJob[] = [];
  private waitingRenewedAt = 0;
  private wake: (() => void) | undefined;
  private readonly abort = new AbortController();

  constructor(private options: SchedulerOptions) {}

  /** New worker limits and poll interval (a reload), used from the next claim on; running deliveries go on. */
  configure(limits: Pick<SchedulerOptions, 'concurrency' | 'perDestination' | 'idlePollMs'>): void {
    this.options = { ...this.options, ...limits };
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Something became due (a new message, an admin retry): claim without waiting for the poll. */
  kick(): void {
    this.wake?.();
  }

  get inFlight(): number {
    return this.active.size;
  }

  /**
   * Stops claiming, lets running deliveries finish up to `graceMs`, then aborts the rest and hands
   * back every lease still held (so another process, or the next start, picks the jobs up at once).
   */
  async stop(graceMs: number): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.kick();
    await this.loop;
    const waitingJobs = this.waiting.splice(0);
    await Promise.all(waitingJobs.map((c) => this.handBack(c)));
    const finished = Promise.all(this.active.values());
    const timer = sleep(graceMs, undefined, { ref: false }).then(() => 'timeout' as const);
    if ((await Promise.race([finished, timer])) === 'timeout') {
      this.options.logger.warn({ event: 'shutdown-abort', inFlight: this.active.size }, 'aborting deliveries still running at shutdown');
      this.abort.abort();
      // An aborted delivery still busy in a DNS lookup or a connect does not notice at once: after a
      // short wait, hand its lease back so another process (or the next start) takes the job now.
      const settled = sleep(ABORT_SETTLE_MS, undefined, { ref: false }).then(() => 'timeout' as const);
      if ((await Promise.race([finished, settled])) === 'timeout') {
        const stragglers = [...this.active.keys()];
        this.options.logger.warn({ event: 'shutdown-hand-back', jobs: stragglers }, 'handing back the leases of deliveries that did not stop in time');
        await Promise.all(stragglers.map((jobId) => this.options.store.releaseLease(jobId, this.options.owner).catch(() => undefined)));
      }
    }
  }

  private async run(): Promise<void> {
    while (this.running) {
      const { store, logger, owner, concurrency, leaseMs, idlePollMs } = this.options;
      await this.renewWaiting();
      this.startWaiting();
      const free = concurrency - this.active.size - this.waiting.length;
      let claimed: ClaimedJob[] = [];
      if (free > 0) {
        try {
          claimed = await store.claimDue(owner, free, leaseMs);
        } catch (err) {
          logger.error({ event: 'claim-failed', err: (err as Error).message }, 'could not claim jobs from the store');
        }
      }
      for (const job of claimed) {
        // A stalled process (CPU starvation, a long GC pause) can miss its renewals and let the lease of a job
        // it is still delivering expire; the store then offers that job again to the same owner. Taking it
        // would open a second connection while the first is still talking to the MX: two copies. The claim
        // renewed the lease for this same owner, so the running attempt simply goes on under it.
        if (this.active.has(job.job.id) || this.waiting.some((w) => w.job.id === job.job.id)) {
          logger.warn({ event: 'lease-expired-while-running', jobId: job.job.id }, 'a running delivery outlived its lease (renewals came too late); not starting it twice');
          continue;
        }
        this.waiting.push(job);
      }
      this.startWaiting();
      if (claimed.length === 0 || free <= claimed.length) await this.idle(claimed.length === 0 ? idlePollMs : 50);
    }
  }

  private async idle(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wake = undefined;
  }

  /**
   * Jobs claimed but held back by the per-destination limit keep their leases: a backlog to one slow
   * destination can wait longer than a lease, and another relay would then take those jobs and deliver
   * them while this one still means to. A lease already lost is dropped here, never started.
   */
  private async renewWaiting(): Promise<void> {
    const { store, logger, owner, leaseMs } = this.options;
    if (this.waiting.length === 0 || Date.now() - this.waitingRenewedAt < Math.max(1000, Math.floor(leaseMs / 3))) return;
    this.waitingRenewedAt = Date.now();
    const lost = new Set<string>();
    await Promise.all(
      this.waiting.map((claimed) =>
        store.renewLease(claimed.job.id, owner, leaseMs).catch((err: Error) => {
          if (err instanceof LeaseLostError) lost.add(claimed.job.id);
          else logger.warn({ event: 'lease-renew-failed', jobId: claimed.job.id, err: err.message }, 'could not renew the lease of a waiting job');
        }),
      ),
    );
    if (lost.size === 0) return;
    for (let i = this.waiting.length - 1; i >= 0; i--) if (lost.has(this.waiting[i]!.job.id)) this.waiting.splice(i, 1);
    logger.warn({ event: 'lease-lost-while-waiting', jobs: [...lost] }, 'jobs waiting for their destination lost their leases; left to the worker that holds them now');
  }

  private startWaiting(): void {
    for (let i = 0; i < this.waiting.length;) {
      const claimed = this.waiting[i]!;
      const busy = this.perDomain.get(claimed.job.domain) ?? 0;
      if (busy >= this.options.perDestination || this.active.size >= this.options.concurrency) {
        i++;
        continue;
      }
      this.waiting.splice(i, 1);
      this.perDomain.set(claimed.job.domain, busy + 1);
      const task = this.execute(claimed).finally(() => {
        this.active.delete(claimed.job.id);
        const left = (this.perDomain.get(claimed.job.domain) ?? 1) - 1;
        if (left <= 0) this.perDomain.delete(claimed.job.domain);
        else this.perDomain.set(claimed.job.domain, left);
        this.kick();
      });
      this.active.set(claimed.job.id, task);
    }
  }

  private async execute(claimed: ClaimedJob): Promise<void> {
    const { store, logger, owner, leaseMs } = this.options;
    const jobId = claimed.job.id;
    if (claimed.resumed) {
      logger.warn({ event: 'possible-duplicate', jobId }, 'taking over a job whose lease expired mid-attempt; the earlier attempt may already have delivered it');
    }
    let leaseLost = false;
    const renew = setInterval(
      () => {
        store.renewLease(jobId, owner, leaseMs).catch((err: Error) => {
          if (err instanceof LeaseLostError) leaseLost = true;
          logger.warn({ event: 'lease-renew-failed', jobId, err: err.message }, 'could not renew a delivery lease');
        });
      },
      Math.max(1000, Math.floor(leaseMs / 3)),
    );
    renew.unref();
    try {
      let result: JobResult;
      try {
        result = await this.options.deliver(claimed, this.abort.signal);
      } catch (err) {
        if (isStoreError(err, 'damaged')) {
          // The store found the message damaged (record or body) and set it aside: nothing to record, no retry.
          logger.error({ event: 'delivery-refused-damaged', jobId, queueId: claimed.message.id, err: (err as Error).message }, 'message damaged in the store; quarantined instead of delivered');
          return;
        }
        logger.error({ event: 'delivery-crashed', jobId, err: (err as Error).message }, 'delivery failed unexpectedly; deferring');
        result = this.options.onCrash(claimed, err as Error);
      }
      if (leaseLost) logger.warn({ event: 'possible-duplicate', jobId }, 'the lease was lost during delivery; another worker may deliver this job again');
      // The lease is still renewed while the evidence is written (and held, if the evidence log is unavailable).
      const evidenced = await this.writeEvidence(claimed, result);
      clearInterval(renew);
      if (!evidenced) return;
      try {
        await this.record(jobId, result);
      } catch (err) {
        if (!retryable(err)) await this.unrecorded(claimed, result, err as Error);
        throw err;
      }
      this.options.onSettled?.(claimed, result);
      this.reportNotices(claimed, result);
    } catch (err) {
      if (err instanceof LeaseLostError) {
        logger.warn({ event: 'possible-duplicate', jobId }, 'the lease expired before the result was recorded; the job may be delivered again');
      } else if (retryable(err)) {
        logger.error({ event: 'complete-failed', jobId, err: (err as Error).message }, 'could not record a delivery result; the lease will expire and the job will be retried');
      }
    } finally {
      clearInterval(renew);
    }
  }

  /**
   * Writes a result's evidence (beforeRecord), retrying a failed write 0.5 s doubling to 5 s for up to
   * evidenceHoldMs (never past shutdown). False when it was not written: the caller must not record the result.
   */
  private async writeEvidence(claimed: ClaimedJob, result: JobResult): Promise<boolean> {
    const { beforeRecord, logger } = this.options;
    if (!beforeRecord) return true;
    const jobId = claimed.job.id;
    const giveUpAt = Date.now() + (this.options.evidenceHoldMs ?? STORE_RETRY_MS);
    for (let delay = 500; ; delay = Math.min(delay * 2, 5_000)) {
      try {
        await beforeRecord(claimed, result);
        return true;
      } catch (err) {
        if (this.abort.signal.aborted || Date.now() + delay > giveUpAt) {
          logger.error(
            { event: 'evidence-write-failed', jobId, err: (err as Error).message },
            'could not write the evidence of a result; the outcome is not recorded: the job is retried once its lease expires',
          );
          return false;
        }
        logger.warn({ event: 'evidence-write-retry', jobId, retryInMs: delay, err: (err as Error).message }, 'could not write the evidence of a result: holding the result and retrying');
        await sleep(delay, undefined, { ref: false });
      }
    }
  }

  /**
   * Records a result, holding it while the store is unreachable (a Redis restart): letting the lease run out
   * instead would send what was just delivered again once the store is back. Nobody else can take the job
   * while the store is down; once it answers, the lease is still ours unless another worker claimed it (then
   * the usual lease-lost path logs the possible duplicate). Bounded, and given up at shutdown.
   */
  private async record(jobId: string, result: JobResult): Promise<void> {
    const { store, logger, owner } = this.options;
    await retryWhileUnavailable(() => store.completeJob(jobId, owner, result), { event: 'complete-retry', logger, fields: { jobId }, signal: this.abort.signal });
  }

  /**
   * A result the store refused for a reason retrying cannot fix (a damaged record, a bug): delivering again
   * every lease period would send copy after copy. Stop after this first failure: quarantine the message, log
   * what this attempt already did (a possible duplicate if anyone releases it). The store's observer counts the
   * quarantine (sealgate_quarantined_total{kind="result"}), which an alert can watch.
   */
  private async unrecorded(claimed: ClaimedJob, result: JobResult, error: Error): Promise<void> {
    const { store, logger } = this.options;
    const jobId = claimed.job.id;
    const outcomes: Record<string, number> = {};
    for (const r of result.recipients) outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1;
    logger.error(
      {
        event: 'possible-duplicate',
        cause: 'result-unrecorded',
        jobId,
        queueId: claimed.message.id,
        outcomes,
        reasons: [...new Set(result.recipients.map((r) => r.evidence.reason))],
        err: error.message,
      },
      'could not record a delivery result; the message is quarantined instead of retried (recipients counted as delivered may have received it)',
    );
    try {
      await store.quarantineMessage(claimed.message.id, 'result', `result could not be recorded: ${error.message}`, jobId);
    } catch (err) {
      logger.error({ event: 'quarantine-failed', jobId, err: (err as Error).message }, 'could not quarantine a job whose result was not recorded');
    }
  }

  /** Final notice outcomes go to the portal once recorded; an observer's failure never affects delivery. */
  private reportNotices(claimed: ClaimedJob, result: JobResult): void {
    const observer = this.options.noticeObserver ?? noopNoticeObserver;
    for (const event of finishedNotices(claimed, result)) {
      try {
        observer.noticeFinished(event);
      } catch (err) {
        this.options.logger.error({ event: 'notice-observer-failed', queueId: event.queueId, err: (err as Error).message }, 'the notice observer failed');
      }
    }
  }

  private async handBack(claimed: ClaimedJob): Promise<void> {
    await this.options.store.releaseLease(claimed.job.id, this.options.owner).catch(() => undefined);
  }
}
