import type { Config } from '../config/schema';
import type { Logger } from '../log/logger';
import { closeMxSession, connectCandidate, type Candidate, type DeliveryPlan, type MxSession, type PolicyRuntime } from '../policy';
import type { ClaimedJob, JobResult, RecipientOutcome, RecipientRecord, RecipientResult, Store } from '../store/types';
import type { AuditLog } from '../evidence/audit-log';
import { hasExpired, nextRetryAt } from './backoff';
import { queueFailureDsn } from './bounces';
import { ConnectionPool, type PooledSession } from './connection-pool';
import { toAuditEntry, type CertificateEvidence, type DeliveryEvidence, type MxAttemptEvidence, type PolicyEvidence, type TlsEvidence } from './evidence';
import { resetSession, sendTransaction, type TransactionResult } from './transaction';

export interface DeliveryEngineDeps {
  config: Config;
  store: Store;
  policy: PolicyRuntime;
  logger: Logger;
  audit: AuditLog;
  now?: () => number;
}

/** How one recipient ended in one attempt, before it becomes stored evidence. */
interface Decision {
  outcome: RecipientOutcome;
  reason: string;
  reply: string | null;
  /** Human-readable explanation, when the code alone is terse. */
  detail?: string;
  /** RFC 3463 status for bounces. */
  status?: string;
  session?: MxSession;
}

interface CandidateRun {
  decisions: Map<string, Decision>;
  mxAttempts: MxAttemptEvidence[];
}

const ENHANCED_STATUS = /\b([245]\.\d{1,3}\.\d{1,3})\b/;

/**
 * Delivers one job (one message, one recipient domain): asks the policy module for a plan, tries
 * the candidate MX hosts over compliant TLS only, and turns what happened into per-recipient
 * outcomes with evidence. Never sends in the clear: an MX that cannot do compliant TLS is skipped,
 * and when none can, the recipients are diverted to the secure portal.
 */
export class DeliveryEngine {
  private readonly pool: ConnectionPool;
  private readonly now: () => number;

  constructor(private readonly deps: DeliveryEngineDeps) {
    this.pool = new ConnectionPool(deps.config.delivery.maxMessagesPerConnection, deps.config.delivery.connectionIdleTimeout);
    this.now = deps.now ?? Date.now;
  }

  async deliverJob(claimed: ClaimedJob, signal: AbortSignal): Promise<JobResult> {
    const { job, message } = claimed;
    const pending = job.recipients.filter((r) => r.state === 'pending');
    if (pending.length === 0) return { recipients: [] };
    if (signal.aborted) return this.handBack(pending);
    const startedAt = this.now();
    const plan = this.applyTlsRequiredHeader(claimed, await this.deps.policy.planner.planDelivery(job.domain));

    let run: CandidateRun;
    if (plan.kind === 'deliver') {
      run = await this.tryCandidates(claimed, plan, pending, signal);
    } else {
      const decision: Decision =
        plan.kind === 'bounce'
          ? { outcome: 'bounced', reason: plan.code, detail: plan.reason, reply: plan.reply, status: plan.status }
          : { outcome: plan.kind === 'divert' ? 'diverted' : 'deferred', reason: plan.code, detail: plan.reason, reply: null };
      run = { decisions: new Map(pending.map((r) => [r.address, { ...decision }])), mxAttempts: [] };
      this.deps.logger.debug({ event: 'plan', queueId: message.id, domain: job.domain, kind: plan.kind, code: plan.code, reason: plan.reason }, 'delivery plan');
    }

    this.applyExpiry(claimed, run, signal);
    const now = this.now();
    const policy: PolicyEvidence = { ...plan.policy };
    const recipients: RecipientResult[] = pending.map((rcpt) => {
      const decision = run.decisions.get(rcpt.address) ?? { outcome: 'deferred', reason: 'not-attempted', reply: null };
      const evidence = buildEvidence(decision, policy, run.mxAttempts, startedAt, now, plan.kind === 'deliver' ? plan.wouldFail : []);
      return { address: rcpt.address, outcome: decision.outcome, evidence, ...(decision.outcome === 'diverted' ? { divertReason: decision.reason } : {}) };
    });

    await this.bounce(claimed, pending, recipients, run);
    const deferred = recipients.some((r) => r.outcome === 'deferred');
    const retryAt = signal.aborted ? now : nextRetryAt(job.attempts + 1, this.deps.config.delivery.retrySchedule, now);
    this.logOutcome(claimed, recipients);
    return deferred ? { recipients, retryAt } : { recipients };
  }

  /** Shutting down before the attempt began: nothing happened, so the recipients are simply due again. */
  private handBack(pending: RecipientRecord[]): JobResult {
    return deferAll(pending, 'shutdown', this.now(), this.now());
  }

  /** The result for a job whose delivery threw: every pending recipient deferred, due again per the schedule. */
  onCrash(claimed: ClaimedJob, error: Error): JobResult {
    const now = this.now();
    const pending = claimed.job.recipients.filter((r) => r.state === 'pending');
    return deferAll(pending, 'internal-error', now, nextRetryAt(claimed.job.attempts + 1, this.deps.config.delivery.retrySchedule, now), error.message);
  }

  /** Writes the audit lines for a result the store has recorded. */
  recordAudit(claimed: ClaimedJob, result: JobResult): void {
    for (const r of result.recipients) this.deps.audit.record(toAuditEntry(claimed.message.id, claimed.message.headers.messageId, r.address, r.evidence));
  }

  async close(): Promise<void> {
    await this.pool.close();
  }

  /** RFC 8689 `TLS-Required: No` lowers nothing unless the admin allowed it; even then TLS stays mandatory. */
  private applyTlsRequiredHeader(claimed: ClaimedJob, plan: DeliveryPlan): DeliveryPlan {
    const header = claimed.message.headers.tlsRequired?.trim().toLowerCase();
    if (header !== 'no' || claimed.message.params.requireTls) return plan;
    const honored = this.deps.config.delivery.honorTlsRequiredNo && plan.kind === 'deliver';
    this.deps.logger.info(
      { event: honored ? 'tls-required-no-honored' : 'tls-required-no-ignored', queueId: claimed.message.id, domain: claimed.job.domain },
      honored ? 'TLS-Required: No honoured: certificates are not required (TLS still is)' : 'TLS-Required: No ignored: regulated mail keeps its TLS policy',
    );
    if (!honored) return plan;
    return { ...plan, candidates: plan.candidates.map((c) => ({ ...c, requireValidCert: false })) };
  }

  private async tryCandidates(claimed: ClaimedJob, plan: Extract<DeliveryPlan, { kind: 'deliver' }>, pending: RecipientRecord[], signal: AbortSignal): Promise<CandidateRun> {
    const decisions = new Map<string, Decision>();
    const mxAttempts: MxAttemptEvidence[] = [];
    const remaining = new Set(pending.map((r) => r.address));
    let transient: string | null = plan.hosts.some((h) => h.excluded === 'address-lookup-temporary') ? 'mx-address-lookup-temporary' : null;
    const requireTls = claimed.message.params.requireTls === true;

    for (const planned of plan.candidates) {
      if (remaining.size === 0 || signal.aborted) break;
      // REQUIRETLS (RFC 8689) needs an authenticated MX, so it raises the level to verify.
      const candidate: Candidate = requireTls ? { ...planned, requireValidCert: true } : planned;
      const key = ConnectionPool.key(candidate.host, candidate.port, candidate.requireValidCert, candidate.servername);
      let pooled = this.pool.take(key);
      const reused = pooled !== undefined;
      if (!pooled) {
        const connected = await this.connect(candidate, mxAttempts);
        if (!connected.ok) {
          if (connected.classification === 'transient') transient = connected.code;
          continue;
        }
        pooled = connected.pooled;
      }
      let result = await this.send(claimed, pooled.session, [...remaining], signal);
      if (reused && result.kind === 'failed' && result.code === 'connection-lost' && !result.bodySent) {
        // The idle connection died while pooled; that says nothing about the MX. Dial again once.
        void closeMxSession(pooled.session, 1_000);
        const connected = await this.connect(candidate, mxAttempts);
        if (!connected.ok) {
          if (connected.classification === 'transient') transient = connected.code;
          continue;
        }
        pooled = connected.pooled;
        result = await this.send(claimed, pooled.session, [...remaining], signal);
      }
      const session = pooled.session;
      const attempt = sessionAttempt(session, result, this.now());
      mxAttempts.push(attempt);

      if (result.kind === 'answered') {
        for (const address of [...remaining]) {
          const reply = result.recipients.get(address);
          const outcome = reply?.outcome ?? 'deferred';
          const text = reply?.reply ?? null;
          decisions.set(address, {
            outcome,
            reason: outcome === 'delivered' ? 'delivered' : `rcpt-${text?.slice(0, 3) ?? 'no-reply'}`,
            reply: text,
            ...(outcome === 'bounced' ? { status: ENHANCED_STATUS.exec(text ?? '')?.[1] ?? '5.0.0' } : {}),
            session,
          });
          remaining.delete(address);
        }
        await this.recycle(key, { ...pooled, sent: pooled.sent + 1 });
        continue;
      }

      void closeMxSession(session, 2_000);
      if (result.classification === 'permanent') {
        for (const address of remaining) decisions.set(address, { outcome: 'bounced', reason: result.code, reply: result.reply, status: ENHANCED_STATUS.exec(result.reply ?? '')?.[1] ?? '5.0.0', session });
        remaining.clear();
      } else if (result.classification === 'transient' && result.bodySent) {
        // The MX may have the message already: retrying elsewhere now could deliver it twice.
        this.deps.logger.warn({ event: 'possible-duplicate', queueId: claimed.message.id, mx: session.target.host }, 'connection lost after the message was sent; deferring (it may be delivered twice)');
        for (const address of remaining) decisions.set(address, { outcome: 'deferred', reason: result.code, reply: result.reply, session });
        remaining.clear();
      } else if (result.classification === 'transient') {
        transient = result.code;
      }
    }

    for (const address of remaining) {
      if (signal.aborted) decisions.set(address, { outcome: 'deferred', reason: 'shutdown', reply: null });
      else if (transient) decisions.set(address, { outcome: 'deferred', reason: transient, reply: lastReply(mxAttempts) });
      else if (requireTls) decisions.set(address, { outcome: 'bounced', reason: 'requiretls-unavailable', reply: '550 5.7.30 REQUIRETLS support required', status: '5.7.30' });
      else {
        const detail = mxAttempts.map((a) => `${a.mx}${a.ip ? ` [${a.ip}]` : ''}: ${a.code}: ${a.reason}`).join('; ') || 'no MX host was a candidate';
        // One shared cause (every MX lacks STARTTLS, say) is the most useful reason; several get a summary.
        const codes = new Set(mxAttempts.map((a) => a.code));
        const reason = codes.size === 1 ? [...codes][0]! : mxAttempts.length > 0 ? 'no-compliant-mx' : 'no-mx-candidate';
        decisions.set(address, { outcome: 'diverted', reason, detail, reply: lastReply(mxAttempts) });
      }
    }
    return { decisions, mxAttempts };
  }

  private async connect(candidate: Candidate, mxAttempts: MxAttemptEvidence[]): Promise<{ ok: true; pooled: PooledSession } | { ok: false; classification: string; code: string }> {
    const result = await connectCandidate(candidate, this.deps.policy.sessionOptions);
    const at = this.now();
    for (const attempt of result.attempts) {
      if (result.ok && attempt.error === null && attempt.judgement?.compliant) continue; // recorded after the transaction
      const session = !result.ok ? result.session : null;
      mxAttempts.push({
        mx: candidate.host,
        ip: attempt.address,
        at,
        class: attempt.error ? attempt.error.classification === 'permanent' ? 'permanent' : attempt.error.classification : (attempt.judgement?.classification ?? 'non-compliant'),
        code: attempt.error?.code ?? attempt.judgement?.code ?? 'unknown',
        reason: attempt.error ? attempt.error.message : (attempt.judgement?.reason ?? 'unknown'),
        starttls: attempt.error ? attempt.error.starttlsAdvertised : (session?.starttlsAdvertised ?? null),
        tls: session && session.target.address === attempt.address ? tlsOf(session) : null,
        certificate: session && session.target.address === attempt.address ? certificateOf(session) : null,
        reply: attempt.error?.reply ?? null,
      });
    }
    if (result.ok) return { ok: true, pooled: { session: result.session, judgement: result.judgement, sent: 0 } };
    return { ok: false, classification: result.classification, code: result.code };
  }

  private async send(claimed: ClaimedJob, session: MxSession, recipients: string[], signal: AbortSignal): Promise<TransactionResult> {
    const { message, job } = claimed;
    const abort = () => session.connection.close();
    signal.addEventListener('abort', abort, { once: true });
    try {
      const body = await this.deps.store.openBody(message.id);
      const records = job.recipients.filter((r) => recipients.includes(r.address));
      const notify = sameNotify(records);
      return await sendTransaction(session, {
        from: message.from,
        recipients,
        size: message.size,
        eightBit: message.params.bodyType === '8BITMIME',
        requireTls: message.params.requireTls === true,
        ...(message.params.dsn || notify ? { dsn: { ...(message.params.dsn?.ret ? { ret: message.params.dsn.ret } : {}), ...(message.params.dsn?.envid ? { envid: message.params.dsn.envid } : {}), ...(notify ? { notify } : {}) } } : {}),
        body,
      });
    } finally {
      signal.removeEventListener('abort', abort);
    }
  }

  private async recycle(key: string, pooled: PooledSession): Promise<void> {
    if (await resetSession(pooled.session)) this.pool.give(key, pooled);
    else void closeMxSession(pooled.session, 1_000);
  }

  /** Deferred past maxQueueTime: divert (default) or bounce. A shutdown hand-back never expires a job. */
  private applyExpiry(claimed: ClaimedJob, run: CandidateRun, signal: AbortSignal): void {
    const { maxQueueTime, onExpiry } = this.deps.config.delivery;
    if (signal.aborted || !hasExpired(claimed.message.receivedAt, maxQueueTime, this.now())) return;
    for (const decision of run.decisions.values()) {
      if (decision.outcome !== 'deferred') continue;
      const last = decision.reason;
      decision.outcome = onExpiry === 'bounce' ? 'bounced' : 'diverted';
      decision.reason = 'queue-time-expired';
      if (onExpiry === 'bounce') decision.status = '4.4.7';
      decision.reply ??= `last problem: ${last}`;
    }
  }

  private async bounce(claimed: ClaimedJob, pending: RecipientRecord[], recipients: RecipientResult[], run: CandidateRun): Promise<void> {
    const bounced = recipients.filter((r) => r.outcome === 'bounced');
    if (bounced.length === 0) return;
    const failed = bounced.map((r) => {
      const decision = run.decisions.get(r.address)!;
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
      await queueFailureDsn(this.deps.store, this.deps.config.hostname, claimed, failed, this.deps.logger);
    } catch (err) {
      // Losing the bounce notice must not lose the outcome: the bounce itself is recorded either way.
      this.deps.logger.error({ event: 'dsn-failed', queueId: claimed.message.id, err: (err as Error).message }, 'could not queue a failure DSN');
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

function tlsOf(session: MxSession): TlsEvidence {
  return { protocol: session.negotiated.protocol, cipher: session.negotiated.cipher, group: session.negotiated.group };
}

function certificateOf(session: MxSession): CertificateEvidence {
  const c = session.certificate;
  return { subject: c.subject, issuer: c.issuer, validFrom: c.validFrom, validTo: c.validTo, trusted: c.trusted, nameMatch: c.nameMatch, error: c.error };
}

function sessionAttempt(session: MxSession, result: TransactionResult, at: number): MxAttemptEvidence {
  const answered = result.kind === 'answered';
  const replies = answered ? [...result.recipients.values()].map((r) => r.reply) : [];
  return {
    mx: session.target.host,
    ip: session.target.address,
    at,
    class: answered ? 'ok' : result.classification,
    code: answered ? 'ok' : result.code,
    reason: answered ? 'transaction completed' : result.reason,
    starttls: session.starttlsAdvertised,
    tls: tlsOf(session),
    certificate: certificateOf(session),
    reply: answered ? (replies[0] ?? null) : result.reply,
  };
}

function lastReply(attempts: MxAttemptEvidence[]): string | null {
  for (let i = attempts.length - 1; i >= 0; i--) if (attempts[i]!.reply) return attempts[i]!.reply;
  return null;
}

function buildEvidence(decision: Decision, policy: PolicyEvidence, mxAttempts: MxAttemptEvidence[], startedAt: number, at: number, wouldFail: unknown[]): DeliveryEvidence {
  const session = decision.session;
  return {
    at,
    startedAt,
    outcome: decision.outcome,
    reason: decision.reason,
    mx: session?.target.host ?? null,
    ip: session?.target.address ?? null,
    tls: session ? tlsOf(session) : null,
    certificate: session ? certificateOf(session) : null,
    policy,
    reply: decision.reply,
    ...(decision.status ? { status: decision.status } : {}),
    ...(decision.detail ? { detail: decision.detail } : {}),
    mxAttempts,
    ...(wouldFail.length > 0 ? { wouldFail } : {}),
  };
}
