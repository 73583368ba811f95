import type { Config } from '../config/schema';
import type { Logger } from '../log/logger';
import {
  decideCompliantOnlyOutcomes,
  decideNoticeOutcomes,
  decideOutcomes,
  deliveryMode,
  endsAttempts,
  REASON,
  type AttemptClass,
  type CandidateAttempt,
  type Decision,
  type TransactionResult,
} from '../outcome';
import type { Candidate, DeliveryPlan, PolicyRuntime } from '../policy';
import { smtpConnector, type MxConnector, type MxSession, type OpportunisticSession, type TransactionInput } from '../smtp-client';
import { isStoreError, type ClaimedJob, type JobResult, type RecipientOutcome, type RecipientRecord, type RecipientResult, type Store } from '../store/types';
import { newMessageId } from '../store/ids';
import type { EvidenceRecorder } from '../evidence/recorder';
import { hasExpired, nextRetryAt } from './backoff';
import { delayedCandidates, queueDsn, queueFailureDsn, relayedCandidates, type DsnCandidate } from './bounces';
import { retryAtForWarning } from './notify';
import { retryWhileUnavailable } from './store-retry';
import { ConnectionPool, type PooledSession } from './connection-pool';
import type { TlsSessionObserver } from './tls-session-observer';
import { reportConnection, sessionReport, type SessionReport } from './tls-session-report';
import { daneEvidence, danePoolKey, requireTlsSkip, withDane, withDanePolicy } from './dane-requiretls';
import type { CertificateEvidence, DeliveryEvidence, MxAttemptEvidence, PolicyEvidence, TlsEvidence } from '../evidence/delivery';

export interface DeliveryEngineDeps {
  config: Config;
  store: Store;
  policy: PolicyRuntime;
  logger: Logger;
  /** Writes each result's outcomes to the evidence log (and the audit-file mirror) before the store records them. */
  evidence: Pick<EvidenceRecorder, 'recordOutcomes'>;
  now?: () => number;
  /** The wire: connect, send, reset, close. The real SMTP client unless a test brings a fake. */
  connector?: MxConnector;
  /** Told of every TLS decision for a domain (TLS-RPT counting when tlsrpt.enabled); never for notices, routes or report mail. */
  tlsSessions?: TlsSessionObserver;
}

/**
 * What one job runs under, taken when it starts and kept until it ends: a reload changes what the next
 * job gets, never the job in flight. The pool belongs to it because its sessions were judged under its
 * policy; a reload that changes the policy retires the pool (idle sessions closed, late ones not kept).
 */
interface JobRuntime {
  config: Config;
  policy: PolicyRuntime;
  pool: ConnectionPool;
}

interface CandidateRun<S = MxSession> {
  attempts: CandidateAttempt<S>[];
  /** Every MX address tried, in order (evidence). */
  mxAttempts: MxAttemptEvidence[];
}

/**
 * Delivers one job (one message, one recipient domain): asks the policy module for a plan, tries
 * the candidate MX hosts over compliant TLS only, and turns what happened into per-recipient
 * outcomes with evidence. Never sends in the clear: an MX that cannot do compliant TLS is skipped,
 * and when none can, the recipients are diverted to the secure portal. The one exception is a
 * portal notice (`params.notice`, see decideNoticeOutcomes): it carries no message content and is
 * delivered with opportunistic TLS on its own path (deliverNotice), which nothing else takes.
 */
export class DeliveryEngine {
  private runtime: JobRuntime;
  private readonly now: () => number;
  private readonly connector: MxConnector;

  constructor(private readonly deps: DeliveryEngineDeps) {
    this.connector = deps.connector ?? smtpConnector;
    this.runtime = { config: deps.config, policy: deps.policy, pool: this.newPool(deps.config) };
    this.now = deps.now ?? Date.now;
  }

  /**
   * Jobs that start from now on run under this config and policy; jobs in flight finish under theirs. A new
   * policy or new pool settings retire the pool: its idle sessions were negotiated under the old profile.
   */
  reconfigure(config: Config, policy: PolicyRuntime): void {
    const previous = this.runtime;
    const poolKept =
      policy === previous.policy &&
      config.delivery.maxMessagesPerConnection === previous.config.delivery.maxMessagesPerConnection &&
      config.delivery.connectionIdleTimeout === previous.config.delivery.connectionIdleTimeout;
    this.runtime = { config, policy, pool: poolKept ? previous.pool : this.newPool(config) };
    if (!poolKept) void previous.pool.close();
  }

  private newPool(config: Config): ConnectionPool {
    return new ConnectionPool(config.delivery.maxMessagesPerConnection, config.delivery.connectionIdleTimeout, (session, waitMs) => this.connector.close(session, waitMs));
  }

  async deliverJob(claimed: ClaimedJob, signal: AbortSignal): Promise<JobResult> {
    const { job, message } = claimed;
    const pending = job.recipients.filter((r) => r.state === 'pending');
    if (pending.length === 0) return { recipients: [] };
    if (signal.aborted) return this.handBack(pending);
    const at = this.runtime;
    const mode = deliveryMode(message.params);
    if (mode === 'opportunistic') return this.deliverNotice(at, claimed, pending, signal);
    const startedAt = this.now();
    const plan = this.applyTlsRequiredHeader(at, claimed, await at.policy.planner.planDelivery(job.domain));

    const report = this.sessionReport(at, claimed, plan);
    let run: CandidateRun = { attempts: [], mxAttempts: [] };
    if (plan.kind === 'deliver') run = await this.tryCandidates(at, claimed, plan, pending, signal, report);
    else this.deps.logger.debug({ event: 'plan', queueId: message.id, domain: job.domain, kind: plan.kind, code: plan.code, reason: plan.reason }, 'delivery plan');

    // A shutdown hand-back never expires a job.
    const { maxQueueTime, onExpiry } = at.config.delivery;
    const expired = !signal.aborted && hasExpired(message.receivedAt, maxQueueTime, this.now());
    if (report && report.events.length > 0) this.deps.tlsSessions?.tlsSessions(report.events);
    // Compliant-only mail (the relay's own reports to its staff) is tried like any message, but never diverted.
    const decisions =
      mode === 'compliant-only'
        ? decideCompliantOnlyOutcomes({ plan, recipients: pending.map((r) => r.address), attempts: run.attempts, aborted: signal.aborted, expired })
        : decideOutcomes({
            plan,
            recipients: pending.map((r) => r.address),
            attempts: run.attempts,
            requireTls: message.params.requireTls === true,
            aborted: signal.aborted,
            expired: expired ? onExpiry : null,
          });
    const now = this.now();
    const policy: PolicyEvidence = { ...plan.policy };
    const recipients: RecipientResult[] = pending.map((rcpt) => {
      const decision = decisions.get(rcpt.address) ?? { outcome: 'deferred', reason: REASON.notAttempted, reply: null };
      const evidence = buildEvidence(decision, withDanePolicy(policy, plan, decision.session), run.mxAttempts, startedAt, now, plan.kind === 'deliver' ? plan.wouldFail : []);
      return { address: rcpt.address, outcome: decision.outcome, evidence, ...(decision.outcome === 'diverted' ? { divertReason: decision.reason } : {}) };
    });

    await this.bounce(at.config, claimed, pending, recipients, decisions, signal);
    const reported = await this.notifySender(at.config, claimed, pending, recipients, decisions, now, signal);
    const deferred = recipients.some((r) => r.outcome === 'deferred');
    const { retrySchedule, delayWarning } = at.config.delivery;
    // A delay warning still owed brings the next attempt forward to its time, so it is not late by a whole retry step.
    const stillDeferred = pending.filter((p) => recipients.some((r) => r.address === p.address && r.outcome === 'deferred'));
    const retryAt = signal.aborted ? now : retryAtForWarning(nextRetryAt(job.attempts + 1, retrySchedule, now), message, stillDeferred, delayWarning, now);
    this.logOutcome(claimed, recipients);
    return deferred ? { recipients: reported, retryAt } : { recipients: reported };
  }

  /**
   * A portal notice: the MX plan without level or MTA-STS, opportunistic TLS per MX, and the
   * notice outcome rule (never diverted; deferred, then bounced at expiry, with no DSN).
   */
  private async deliverNotice(at: JobRuntime, claimed: ClaimedJob, pending: RecipientRecord[], signal: AbortSignal): Promise<JobResult> {
    const { job, message } = claimed;
    const startedAt = this.now();
    const plan = await at.policy.planner.planOpportunistic(job.domain);
    const run: CandidateRun<OpportunisticSession> = plan.kind === 'deliver' ? await this.tryOpportunistic(at, claimed, plan, pending, signal) : { attempts: [], mxAttempts: [] };
    const expired = !signal.aborted && hasExpired(message.receivedAt, at.config.delivery.maxQueueTime, this.now());
    const decisions = decideNoticeOutcomes({ plan, recipients: pending.map((r) => r.address), attempts: run.attempts, aborted: signal.aborted, expired });
    const now = this.now();
    const policy: PolicyEvidence = { source: plan.policy.source, mode: null, id: null, level: 'opportunistic' };
    const recipients: RecipientResult[] = pending.map((rcpt) => {
      const decision = decisions.get(rcpt.address) ?? { outcome: 'deferred', reason: REASON.notAttempted, reply: null };
      return { address: rcpt.address, outcome: decision.outcome, evidence: noticeEvidence(decision, policy, run.mxAttempts, startedAt, now) };
    });
    const deferred = recipients.some((r) => r.outcome === 'deferred');
    const retryAt = signal.aborted ? now : nextRetryAt(job.attempts + 1, at.config.delivery.retrySchedule, now);
    this.logOutcome(claimed, recipients);
    return deferred ? { recipients, retryAt } : { recipients };
  }

  /** Each candidate in order, opportunistically, until one attempt decides every recipient. No pooling: notices are few. */
  private async tryOpportunistic(
    at: JobRuntime,
    claimed: ClaimedJob,
    plan: Extract<DeliveryPlan, { kind: 'deliver' }>,
    pending: RecipientRecord[],
    signal: AbortSignal,
  ): Promise<CandidateRun<OpportunisticSession>> {
    const run: CandidateRun<OpportunisticSession> = { attempts: [], mxAttempts: [] };
    const recipients = pending.map((r) => r.address);
    for (const candidate of plan.candidates) {
      if (signal.aborted) break;
      const connected = await this.connector.connectOpportunistic(candidate, at.policy.sessionOptions);
      const triedAt = this.now();
      const tried: MxAttemptEvidence[] = connected.attempts
        .filter((a) => a.error !== null)
        .map((a) => ({
          mx: candidate.host,
          ip: a.address,
          at: triedAt,
          class: a.error!.classification,
          code: a.error!.code,
          reason: `${a.protection} TLS client: ${a.error!.message}`,
          starttls: a.error!.starttlsAdvertised,
          tls: null,
          certificate: null,
          reply: a.error!.reply,
        }));
      if (!connected.ok) {
        run.attempts.push({ kind: 'no-session', classification: connected.classification, code: connected.code, tried });
        run.mxAttempts.push(...tried);
        continue;
      }
      const session = connected.session;
      const result = await this.connector.sendOpportunistic(session, await this.transactionInput(claimed, recipients), signal);
      void this.connector.closeOpportunistic(session, 2_000);
      tried.push(opportunisticAttempt(session, result, this.now()));
      const attempt: CandidateAttempt<OpportunisticSession> = { kind: 'transaction', session, result, tried };
      run.attempts.push(attempt);
      run.mxAttempts.push(...tried);
      if (endsAttempts(attempt)) break;
    }
    return run;
  }

  /** Shutting down before the attempt began: nothing happened, so the recipients are simply due again. */
  private handBack(pending: RecipientRecord[]): JobResult {
    return deferAll(pending, REASON.shutdown, this.now(), this.now());
  }

  /** The result for a job whose delivery threw: every pending recipient deferred, due again per the schedule. */
  onCrash(claimed: ClaimedJob, error: Error): JobResult {
    const now = this.now();
    const pending = claimed.job.recipients.filter((r) => r.state === 'pending');
    return deferAll(pending, REASON.internalError, now, nextRetryAt(claimed.job.attempts + 1, this.runtime.config.delivery.retrySchedule, now), error.message);
  }

  /** Writes the evidence of a result (durable in the evidence log, then mirrored to the audit file), before the store records it. */
  recordEvidence(claimed: ClaimedJob, result: JobResult): Promise<void> {
    return this.deps.evidence.recordOutcomes(claimed.message, result.recipients);
  }

  async close(): Promise<void> {
    await this.runtime.pool.close();
  }

  /** RFC 8689 `TLS-Required: No` lowers nothing unless the admin allowed it; even then TLS stays mandatory. */
  private applyTlsRequiredHeader(at: JobRuntime, claimed: ClaimedJob, plan: DeliveryPlan): DeliveryPlan {
    const header = claimed.message.headers.tlsRequired?.trim().toLowerCase();
    if (header !== 'no' || claimed.message.params.requireTls) return plan;
    const honored = at.config.delivery.honorTlsRequiredNo && plan.kind === 'deliver';
    this.deps.logger.info(
      { event: honored ? 'tls-required-no-honored' : 'tls-required-no-ignored', queueId: claimed.message.id, domain: claimed.job.domain },
      honored ? 'TLS-Required: No honoured: certificates are not required (TLS still is)' : 'TLS-Required: No ignored: regulated mail keeps its TLS policy',
    );
    if (!honored) return plan;
    return { ...plan, candidates: plan.candidates.map((c) => ({ ...c, requireValidCert: false })) };
  }

  /**
   * Where this job's TLS decisions go (RFC 8460 counting): nowhere without an observer, for a routed domain
   * (the next hop is not the domain's MX) or for a TLS report the relay sends itself.
   */
  private sessionReport(at: JobRuntime, claimed: ClaimedJob, plan: DeliveryPlan): SessionReport {
    if (!this.deps.tlsSessions || claimed.message.params.tlsReport === true) return null;
    if (at.policy.planner.domainRule(plan.domain).route) return null;
    return sessionReport(plan, this.now());
  }

  /**
   * Tries the candidates in order until one attempt decides every recipient (see endsAttempts);
   * what each attempt means for the recipients is the outcome rule's business, not this loop's.
   */
  private async tryCandidates(
    at: JobRuntime,
    claimed: ClaimedJob,
    plan: Extract<DeliveryPlan, { kind: 'deliver' }>,
    pending: RecipientRecord[],
    signal: AbortSignal,
    report: SessionReport,
  ): Promise<CandidateRun> {
    const run: CandidateRun = { attempts: [], mxAttempts: [] };
    const recipients = pending.map((r) => r.address);
    const requireTls = claimed.message.params.requireTls === true;

    for (const planned of plan.candidates) {
      if (signal.aborted) break;
      const skipped = requireTls ? requireTlsSkip(planned, plan, this.now()) : null;
      if (skipped) {
        this.addAttempt(run, skipped);
        continue;
      }
      // REQUIRETLS (RFC 8689) needs an authenticated MX, so it raises the level to verify.
      const candidate: Candidate = requireTls ? { ...planned, requireValidCert: true } : planned;
      const key = ConnectionPool.key(candidate.host, candidate.port, candidate.requireValidCert, candidate.servername, danePoolKey(candidate));
      let pooled = at.pool.take(key);
      const reused = pooled !== undefined;
      let tried: MxAttemptEvidence[] = [];
      if (!pooled) {
        const connected = await this.connect(at, candidate, tried, report);
        if (!connected.ok) {
          this.addAttempt(run, { kind: 'no-session', classification: connected.classification, code: connected.code, tried });
          continue;
        }
        pooled = connected.pooled;
      }
      let result = await this.send(claimed, pooled.session, recipients, signal);
      if (reused && result.kind === 'failed' && result.code === 'connection-lost' && !result.bodySent) {
        // The idle connection died while pooled; that says nothing about the MX. Dial again once.
        void this.connector.close(pooled.session, 1_000);
        tried = [];
        const connected = await this.connect(at, candidate, tried, report);
        if (!connected.ok) {
          this.addAttempt(run, { kind: 'no-session', classification: connected.classification, code: connected.code, tried });
          continue;
        }
        pooled = connected.pooled;
        result = await this.send(claimed, pooled.session, recipients, signal);
      }
      const session = pooled.session;
      tried.push(withDane(sessionAttempt(session, result, this.now()), candidate, pooled.judgement));
      const attempt: CandidateAttempt<MxSession> = { kind: 'transaction', session, result, tried };
      this.addAttempt(run, attempt);

      if (result.kind === 'answered') {
        await this.recycle(at, key, { ...pooled, sent: pooled.sent + 1 });
      } else {
        void this.connector.close(session, 2_000);
        if (result.classification === 'transient' && result.bodySent) {
          this.deps.logger.warn(
            { event: 'possible-duplicate', queueId: claimed.message.id, mx: session.target.host },
            'connection lost after the message was sent; deferring (it may be delivered twice)',
          );
        }
      }
      if (endsAttempts(attempt)) break;
    }
    return run;
  }

  private addAttempt(run: CandidateRun, attempt: CandidateAttempt<MxSession>): void {
    run.attempts.push(attempt);
    run.mxAttempts.push(...(attempt.tried as MxAttemptEvidence[]));
  }

  /** Connects to a candidate; records every address that did not give a compliant session in `tried`. */
  private async connect(
    at: JobRuntime,
    candidate: Candidate,
    tried: MxAttemptEvidence[],
    report: SessionReport,
  ): Promise<{ ok: true; pooled: PooledSession } | { ok: false; classification: AttemptClass; code: string }> {
    const result = await this.connector.connect(candidate, at.policy.sessionOptions);
    if (report) reportConnection(report, candidate, result, this.now());
    const triedAt = this.now();
    for (const attempt of result.attempts) {
      if (result.ok && attempt.error === null && attempt.judgement?.compliant) continue; // recorded after the transaction
      const session = !result.ok ? result.session : null;
      tried.push({
        mx: candidate.host,
        ip: attempt.address,
        at: triedAt,
        class: attempt.error ? attempt.error.classification : (attempt.judgement?.classification ?? 'non-compliant'),
        code: attempt.error?.code ?? attempt.judgement?.code ?? 'unknown',
        reason: attempt.error ? attempt.error.message : (attempt.judgement?.reason ?? 'unknown'),
        starttls: attempt.error ? attempt.error.starttlsAdvertised : (session?.starttlsAdvertised ?? null),
        tls: session && session.target.address === attempt.address ? tlsOf(session) : null,
        certificate: session && session.target.address === attempt.address ? certificateEvidence(session.certificate) : null,
        reply: attempt.error?.reply ?? null,
        ...(candidate.dane ? { dane: daneEvidence(candidate, attempt.judgement) } : {}),
      });
    }
    if (result.ok) return { ok: true, pooled: { session: result.session, judgement: result.judgement, sent: 0 } };
    return { ok: false, classification: result.classification, code: result.code };
  }

  /**
   * One transaction. A body the store finds damaged (before sending, or at its last byte while streaming, when
   * the transaction drops the connection instead of sending ".") ends the job here: the store has set the
   * message aside, so the error goes up to the scheduler instead of becoming a retry.
   */
  private async send(claimed: ClaimedJob, session: MxSession, recipients: string[], signal: AbortSignal): Promise<TransactionResult> {
    let input: TransactionInput;
    try {
      input = await this.transactionInput(claimed, recipients);
    } catch (err) {
      if (isStoreError(err, 'damaged')) void this.connector.close(session, 1_000);
      throw err;
    }
    let bodyError: unknown;
    input.body.on('error', (err) => (bodyError ??= err));
    const result = await this.connector.send(session, input, signal);
    if (isStoreError(bodyError, 'damaged')) {
      void this.connector.close(session, 1_000);
      throw bodyError;
    }
    return result;
  }

  private async transactionInput(claimed: ClaimedJob, recipients: string[]): Promise<TransactionInput> {
    const { message, job } = claimed;
    const body = await this.deps.store.openBody(message.id);
    const records = job.recipients.filter((r) => recipients.includes(r.address));
    const notify = sameNotify(records);
    return {
      from: message.from,
      recipients,
      size: message.size,
      eightBit: message.params.bodyType === '8BITMIME',
      requireTls: message.params.requireTls === true,
      ...(message.params.dsn || notify
        ? { dsn: { ...(message.params.dsn?.ret ? { ret: message.params.dsn.ret } : {}), ...(message.params.dsn?.envid ? { envid: message.params.dsn.envid } : {}), ...(notify ? { notify } : {}) } }
        : {}),
      body,
    };
  }

  private async recycle(at: JobRuntime, key: string, pooled: PooledSession): Promise<void> {
    if (await this.connector.reset(pooled.session)) at.pool.give(key, pooled);
    else void this.connector.close(pooled.session, 1_000);
  }

  private async bounce(
    config: Config,
    claimed: ClaimedJob,
    pending: RecipientRecord[],
    recipients: RecipientResult[],
    decisions: Map<string, Decision<MxSession>>,
    signal: AbortSignal,
  ): Promise<void> {
    const bounced = recipients.filter((r) => r.outcome === 'bounced');
    if (bounced.length === 0) return;
    const failed = bounced.map((r) => {
      const decision = decisions.get(r.address)!;
      const record = pending.find((p) => p.address === r.address)!;
      return {
        address: r.address,
        action: 'failed' as const,
        status: decision.status ?? '5.0.0',
        remoteMta: decision.session?.target.host ?? null,
        diagnostic: decision.reply ?? decision.detail ?? decision.reason,
        lastAttemptAt: r.evidence.at,
        record,
      };
    });
    try {
      // Held through a store outage like the result itself: recording the bounce without its DSN would leave the sender unaware.
      // One id for every try: a write that landed though its reply was lost is found again, not queued twice.
      const { store, logger } = this.deps;
      const dsnId = newMessageId();
      await retryWhileUnavailable(() => queueFailureDsn(store, config.hostname, claimed, failed, logger, dsnId), { event: 'dsn-retry', logger, fields: { queueId: claimed.message.id }, signal });
    } catch (err) {
      // Losing the bounce notice must not lose the outcome: the bounce itself is recorded either way.
      this.deps.logger.error({ event: 'dsn-failed', queueId: claimed.message.id, err: (err as Error).message }, 'could not queue a failure DSN');
    }
  }

  /**
   * The sender's other DSNs of this attempt: the delay warning for recipients still deferred past
   * delivery.delayWarning (marked on their results so the store keeps that it was sent), and `relayed` for
   * NOTIFY=SUCCESS recipients the next hop will not report on. Never for a shutdown hand-back.
   */
  private async notifySender(
    config: Config,
    claimed: ClaimedJob,
    pending: RecipientRecord[],
    recipients: RecipientResult[],
    decisions: Map<string, Decision<MxSession>>,
    now: number,
    signal: AbortSignal,
  ): Promise<RecipientResult[]> {
    if (signal.aborted) return recipients;
    const delayed = delayedCandidates(claimed, pending, recipients, decisions, config.delivery, now);
    const relayed = relayedCandidates(pending, recipients, decisions, sameNotify(pending) !== undefined);
    const warned = delayed.length > 0 && (await this.queueNotice(config, claimed, 'delayed', delayed, signal)) !== undefined;
    if (relayed.length > 0) await this.queueNotice(config, claimed, 'relayed', relayed, signal);
    if (!warned) return recipients;
    return recipients.map((r) => (delayed.some((d) => d.address === r.address) ? { ...r, delayWarnedAt: now } : r));
  }

  /** Queues a delay or relayed DSN; a failure is logged and the DSN is simply due again at the next attempt (delay) or lost (relayed). */
  private async queueNotice(config: Config, claimed: ClaimedJob, action: 'delayed' | 'relayed', candidates: DsnCandidate[], signal: AbortSignal): Promise<string | undefined> {
    const { store, logger } = this.deps;
    // One id for every try, as for the failure DSN.
    const dsnId = newMessageId();
    try {
      return await retryWhileUnavailable(() => queueDsn(store, config.hostname, claimed, action, candidates, logger, dsnId), {
        event: 'dsn-retry',
        logger,
        fields: { queueId: claimed.message.id },
        signal,
      });
    } catch (err) {
      logger.error({ event: 'dsn-failed', queueId: claimed.message.id, action, err: (err as Error).message }, `could not queue a ${action} DSN`);
      return undefined;
    }
  }

  private logOutcome(claimed: ClaimedJob, recipients: RecipientResult[]): void {
    const counts: Partial<Record<RecipientOutcome, number>> = {};
    for (const r of recipients) counts[r.outcome] = (counts[r.outcome] ?? 0) + 1;
    const first = recipients[0]?.evidence as DeliveryEvidence | undefined;
    this.deps.logger.info(
      { event: 'job-attempted', queueId: claimed.message.id, domain: claimed.job.domain, outcomes: counts, mx: first?.mx ?? null, tls: first?.tls ?? null, reason: first?.reason },
      'delivery attempt finished',
    );
  }
}

function deferAll(pending: RecipientRecord[], reason: string, at: number, retryAt: number, detail?: string): JobResult {
  return {
    recipients: pending.map((r) => ({ address: r.address, outcome: 'deferred' as const, evidence: { at, outcome: 'deferred' as const, reason, ...(detail ? { detail } : {}) } })),
    retryAt,
  };
}

function sameNotify(records: RecipientRecord[]): Array<'NEVER' | 'SUCCESS' | 'FAILURE' | 'DELAY'> | undefined {
  const first = records[0]?.notify;
  if (!first || records.some((r) => (r.notify ?? []).join() !== first.join())) return undefined;
  return first.map((n) => n.toUpperCase()) as Array<'NEVER' | 'SUCCESS' | 'FAILURE' | 'DELAY'>;
}

/** What evidence names of the session a recipient's outcome was reached on, whichever client carried it. */
interface SessionFacts {
  host: string;
  address: string;
  starttls: boolean | null;
  tls: TlsEvidence;
  certificate: CertificateEvidence | null;
}

/** The TLS of a notice session that never started TLS. */
const PLAINTEXT: TlsEvidence = { protocol: 'plaintext', cipher: null, group: null };

function certificateEvidence(c: MxSession['certificate']): CertificateEvidence {
  return { subject: c.subject, issuer: c.issuer, validFrom: c.validFrom, validTo: c.validTo, trusted: c.trusted, nameMatch: c.nameMatch, error: c.error };
}

function tlsOf(session: MxSession): TlsEvidence {
  return { protocol: session.negotiated.protocol, cipher: session.negotiated.cipher, group: session.negotiated.group };
}

function compliantFacts(session: MxSession): SessionFacts {
  return { host: session.target.host, address: session.target.address, starttls: session.starttlsAdvertised, tls: tlsOf(session), certificate: certificateEvidence(session.certificate) };
}

function opportunisticFacts(session: OpportunisticSession): SessionFacts {
  const n = session.negotiated;
  return {
    host: session.target.host,
    address: session.target.address,
    starttls: session.starttlsAdvertised,
    tls: n ? { protocol: n.protocol, cipher: n.cipher, group: n.group } : PLAINTEXT,
    certificate: session.certificate ? certificateEvidence(session.certificate) : null,
  };
}

/** One transaction on a session as an MX attempt; `completed` says how it went when it was answered. */
function transactionAttempt(facts: SessionFacts, result: TransactionResult, at: number, completed: string): MxAttemptEvidence {
  const answered = result.kind === 'answered';
  const replies = answered ? [...result.recipients.values()].map((r) => r.reply) : [];
  return {
    mx: facts.host,
    ip: facts.address,
    at,
    class: answered ? 'ok' : result.classification,
    code: answered ? 'ok' : result.code,
    reason: answered ? completed : result.reason,
    starttls: facts.starttls,
    tls: facts.tls,
    certificate: facts.certificate,
    reply: answered ? (replies[0] ?? null) : result.reply,
  };
}

function sessionAttempt(session: MxSession, result: TransactionResult, at: number): MxAttemptEvidence {
  return transactionAttempt(compliantFacts(session), result, at, 'transaction completed');
}

function opportunisticAttempt(session: OpportunisticSession, result: TransactionResult, at: number): MxAttemptEvidence {
  const client = session.protection === 'plaintext' ? 'plaintext' : `${session.protection} TLS client`;
  return transactionAttempt(opportunisticFacts(session), result, at, `transaction completed (${client})`);
}

/** A recipient's evidence: the decision, the session it was reached on, the policy and every MX tried. */
function recipientEvidence(decision: Decision<unknown>, facts: SessionFacts | undefined, policy: PolicyEvidence, mxAttempts: MxAttemptEvidence[], startedAt: number, at: number): DeliveryEvidence {
  return {
    at,
    startedAt,
    outcome: decision.outcome,
    reason: decision.reason,
    mx: facts?.host ?? null,
    ip: facts?.address ?? null,
    tls: facts?.tls ?? null,
    certificate: facts?.certificate ?? null,
    policy,
    reply: decision.reply,
    ...(decision.status ? { status: decision.status } : {}),
    ...(decision.detail ? { detail: decision.detail } : {}),
    mxAttempts,
  };
}

function buildEvidence(decision: Decision<MxSession>, policy: PolicyEvidence, mxAttempts: MxAttemptEvidence[], startedAt: number, at: number, wouldFail: unknown[]): DeliveryEvidence {
  const evidence = recipientEvidence(decision, decision.session && compliantFacts(decision.session), policy, mxAttempts, startedAt, at);
  return wouldFail.length > 0 ? { ...evidence, wouldFail } : evidence;
}

/** Evidence of a notice recipient: as any outcome's, plus `opportunistic: true` and which client carried it. */
function noticeEvidence(decision: Decision<OpportunisticSession>, policy: PolicyEvidence, mxAttempts: MxAttemptEvidence[], startedAt: number, at: number): DeliveryEvidence {
  const session = decision.session;
  return {
    ...recipientEvidence(decision, session && opportunisticFacts(session), policy, mxAttempts, startedAt, at),
    opportunistic: true,
    ...(session ? { protection: session.protection } : {}),
  };
}
