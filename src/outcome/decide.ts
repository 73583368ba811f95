import { bounceStatus, EXPIRED_STATUS, rcptReason, REASON, REQUIRETLS_REPLY, REQUIRETLS_STATUS, type AttemptClass, type RecipientOutcome, type TransactionResult } from './codes';

/**
 * The one rule for "what happened to this recipient": from the delivery plan and what was tried at
 * each candidate MX, in order, to one decision per recipient. Pure: the delivery engine runs the
 * attempts and `sealgate check` runs probes; both hand the results here (docs/delivery.md).
 */

/** The parts of a delivery plan the rule reads (a policy `DeliveryPlan` fits). */
export type OutcomePlan =
  | { kind: 'deliver'; hosts: ReadonlyArray<{ excluded: string | null }> }
  | { kind: 'divert' | 'defer'; code: string; reason: string }
  | { kind: 'bounce'; code: string; reason: string; status: string; reply: string };

/** One address tried, as evidence: where, the code and reason of its class, and the reply that ended it. */
export interface TriedAddress {
  mx: string;
  ip: string | null;
  code: string;
  reason: string;
  reply: string | null;
}

/** What happened at one candidate MX. `S` is the caller's session handle, handed back in decisions. */
export type CandidateAttempt<S> =
  /** No compliant session: the class and code of how connecting ended. */
  | { kind: 'no-session'; classification: AttemptClass; code: string; tried: readonly TriedAddress[] }
  /** A compliant session was established and not used for mail (`sealgate check`). */
  | { kind: 'probed'; session: S; tried: readonly TriedAddress[] }
  /** A transaction ran on a compliant session. */
  | { kind: 'transaction'; session: S; result: TransactionResult; tried: readonly TriedAddress[] };

export interface Decision<S = unknown> {
  outcome: RecipientOutcome;
  /** Short machine-readable code. */
  reason: string;
  /** RFC 3463 status (bounces, and expiry as a bounce). */
  status?: string;
  /** Human-readable explanation, when the code alone is terse. */
  detail?: string;
  /** The SMTP reply behind the decision, if any. */
  reply: string | null;
  /** The session the decision was reached on (delivered, refused, or lost after the body). */
  session?: S;
}

export interface OutcomeInput<S> {
  plan: OutcomePlan;
  recipients: readonly string[];
  /** Candidate MX attempts in the order they were made. */
  attempts: readonly CandidateAttempt<S>[];
  /** The message requires REQUIRETLS (RFC 8689). */
  requireTls?: boolean;
  /** The relay is shutting down and stopped before every recipient was decided. */
  aborted?: boolean;
  /** The message outlived `delivery.maxQueueTime`: what becomes of recipients that would be deferred. */
  expired?: 'divert' | 'bounce' | null;
}

/**
 * Whether an attempt decides every recipient still open, so no further MX is tried: a completed
 * transaction, a permanent refusal, a connection lost after the whole body went out (the MX may
 * have the message: trying another could deliver it twice), or a compliant probe.
 */
export function endsAttempts(attempt: CandidateAttempt<unknown>): boolean {
  if (attempt.kind === 'probed') return true;
  if (attempt.kind !== 'transaction') return false;
  const result = attempt.result;
  return result.kind === 'answered' || result.classification === 'permanent' || (result.classification === 'transient' && result.bodySent);
}

export function decideOutcomes<S>(input: OutcomeInput<S>): Map<string, Decision<S>> {
  const decisions = decideBeforeExpiry(input);
  // A REQUIRETLS message is returned, never diverted, when its time runs out (RFC 8689 §5: no other path).
  const onExpiry = input.requireTls ? 'bounce' : input.expired;
  if (input.expired && onExpiry && !input.aborted) for (const decision of decisions.values()) expire(decision, onExpiry);
  return decisions;
}

/** The plan code of a domain set to level `portal` (src/policy/plan.ts). */
const PORTAL_LEVEL = 'portal-level';

function decideBeforeExpiry<S>({ plan, recipients, attempts, requireTls = false, aborted = false }: OutcomeInput<S>): Map<string, Decision<S>> {
  if (plan.kind !== 'deliver') {
    // No MX may carry it (MTA-STS enforce names none): RFC 8689 returns a REQUIRETLS message rather than
    // let it take another path. The `portal` level is the admin's own rule for the domain and still diverts.
    const requireTlsBounce = requireTls && plan.kind === 'divert' && plan.code !== PORTAL_LEVEL;
    const decision: Decision<S> = requireTlsBounce
      ? { outcome: 'bounced', reason: REASON.requireTlsUnavailable, detail: plan.reason, reply: REQUIRETLS_REPLY, status: REQUIRETLS_STATUS }
      : plan.kind === 'bounce'
        ? { outcome: 'bounced', reason: plan.code, detail: plan.reason, reply: plan.reply, status: plan.status }
        : { outcome: plan.kind === 'divert' ? 'diverted' : 'deferred', reason: plan.code, detail: plan.reason, reply: null };
    return new Map(recipients.map((address) => [address, { ...decision }]));
  }

  let transient: string | null = plan.hosts.some((h) => h.excluded === 'address-lookup-temporary')
    ? REASON.mxAddressLookupTemporary
    : plan.hosts.some((h) => h.excluded === REASON.daneTlsaBogus)
      ? REASON.daneTlsaBogus
      : null;
  for (const attempt of attempts) {
    if (endsAttempts(attempt)) return decideAll(attempt, recipients);
    if (attempt.kind === 'no-session' && attempt.classification === 'transient') transient = attempt.code;
    if (attempt.kind === 'transaction' && attempt.result.kind === 'failed' && attempt.result.classification === 'transient') transient = attempt.result.code;
  }

  const tried = attempts.flatMap((a) => a.tried);
  const decision: Decision<S> = aborted
    ? { outcome: 'deferred', reason: REASON.shutdown, reply: null }
    : transient
      ? { outcome: 'deferred', reason: transient, reply: lastReply(tried) }
      : requireTls
        ? { outcome: 'bounced', reason: REASON.requireTlsUnavailable, reply: REQUIRETLS_REPLY, status: REQUIRETLS_STATUS }
        : { outcome: 'diverted', reason: sharedCause(tried), detail: describeTried(tried), reply: lastReply(tried) };
  return new Map(recipients.map((address) => [address, { ...decision }]));
}

/** The decision of an attempt that ends the job (see endsAttempts). */
function decideAll<S>(attempt: CandidateAttempt<S>, recipients: readonly string[]): Map<string, Decision<S>> {
  const decisions = new Map<string, Decision<S>>();
  if (attempt.kind === 'probed') {
    for (const address of recipients) decisions.set(address, { outcome: 'delivered', reason: REASON.compliantMx, reply: null, session: attempt.session });
    return decisions;
  }
  if (attempt.kind !== 'transaction') throw new Error('decideAll: not a final attempt');
  const { result, session } = attempt;
  for (const address of recipients) {
    if (result.kind === 'answered') {
      const reply = result.recipients.get(address);
      const outcome = reply?.outcome ?? 'deferred';
      const text = reply?.reply ?? null;
      decisions.set(address, {
        outcome,
        reason: outcome === 'delivered' ? REASON.delivered : rcptReason(text),
        reply: text,
        ...(outcome === 'bounced' ? { status: bounceStatus(text) } : {}),
        session,
      });
    } else if (result.classification === 'permanent') {
      decisions.set(address, { outcome: 'bounced', reason: result.code, reply: result.reply, status: bounceStatus(result.reply), session });
    } else {
      decisions.set(address, { outcome: 'deferred', reason: result.code, reply: result.reply, session });
    }
  }
  return decisions;
}

/** One shared cause (every MX lacks STARTTLS, say) is the most useful reason; several get a summary. */
export function sharedCause(tried: readonly TriedAddress[]): string {
  const codes = new Set(tried.map((a) => a.code));
  return codes.size === 1 ? [...codes][0]! : tried.length > 0 ? REASON.noCompliantMx : REASON.noMxCandidate;
}

function describeTried(tried: readonly TriedAddress[]): string {
  return tried.map((a) => `${a.mx}${a.ip ? ` [${a.ip}]` : ''}: ${a.code}: ${a.reason}`).join('; ') || 'no MX host was a candidate';
}

function lastReply(tried: readonly TriedAddress[]): string | null {
  for (let i = tried.length - 1; i >= 0; i--) if (tried[i]!.reply) return tried[i]!.reply;
  return null;
}

/** Deferred past maxQueueTime: diverted (default) or bounced with 4.4.7; the last problem stays as the reply. */
function expire(decision: Decision<unknown>, onExpiry: 'divert' | 'bounce'): void {
  if (decision.outcome !== 'deferred') return;
  const last = decision.reason;
  decision.outcome = onExpiry === 'bounce' ? 'bounced' : 'diverted';
  decision.reason = REASON.queueTimeExpired;
  if (onExpiry === 'bounce') decision.status = EXPIRED_STATUS;
  decision.reply ??= `last problem: ${last}`;
}
