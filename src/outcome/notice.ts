import { EXPIRED_STATUS, REASON } from './codes';
import { decideOutcomes, type CandidateAttempt, type Decision, type OutcomePlan } from './decide';

/**
 * The one exception to "compliant TLS or the portal": a portal notice (the link, a code, a
 * reminder, a note to the sender) goes to a domain that already failed the TLS policy, so it
 * cannot divert to the portal it announces. It carries no message content. It is delivered with
 * opportunistic TLS (STARTTLS when offered, else plaintext). When it cannot be delivered it defers,
 * and at the end of the queue time it bounces. It never diverts.
 */

/**
 * How a message is delivered: under the TLS policy (every message), opportunistically (portal notices only), or
 * under the TLS policy with no portal behind it (`compliant-only`: the relay's own mail to its staff, such as a
 * scheduled compliance report, which must never reach anyone but the addressee and never travel unprotected).
 */
export type DeliveryMode = 'compliant' | 'opportunistic' | 'compliant-only';

/**
 * Only a message the portal queued as a notice (`params.notice`) is delivered opportunistically; only one the
 * relay queued for its staff (`params.compliantOnly`) is compliant-only. A message marked both stays compliant-only:
 * the stricter rule wins.
 */
export function deliveryMode(params: { notice?: unknown; compliantOnly?: unknown }): DeliveryMode {
  if (params.compliantOnly) return 'compliant-only';
  return params.notice ? 'opportunistic' : 'compliant';
}

export interface NoticeOutcomeInput<S> {
  plan: OutcomePlan;
  recipients: readonly string[];
  /** Opportunistic MX attempts in the order they were made. */
  attempts: readonly CandidateAttempt<S>[];
  aborted?: boolean;
  /** The notice outlived `delivery.maxQueueTime`: recipients still deferred bounce. */
  expired?: boolean;
}

/**
 * The outcome rule for a notice: the general rule, with two changes. A failed MX attempt of any
 * class other than permanent (no session, a broken handshake even with the permissive client)
 * only defers, because there is nothing to divert to. At expiry a notice bounces whatever
 * `delivery.onExpiry` says. A delivered notice has the reason `notice-delivered`.
 */
export function decideNoticeOutcomes<S>(input: NoticeOutcomeInput<S>): Map<string, Decision<S>> {
  const decisions = decideWithoutDiversion(input);
  for (const decision of decisions.values()) if (decision.outcome === 'delivered') decision.reason = REASON.noticeDelivered;
  return decisions;
}

/**
 * The outcome rule for compliant-only mail (`params.compliantOnly`): the attempts are the compliant ones the
 * engine makes for any message (an MX without compliant TLS is never used), but where the general rule would
 * divert (no compliant MX, a `portal` level domain, an MTA-STS policy naming no usable MX), the recipient is
 * deferred and tried again, and at `maxQueueTime` it bounces whatever `delivery.onExpiry` says. Never diverted.
 */
export function decideCompliantOnlyOutcomes<S>(input: NoticeOutcomeInput<S>): Map<string, Decision<S>> {
  return decideWithoutDiversion(input);
}

/** The general rule with "divert" turned into "defer, then bounce at expiry" (notices and compliant-only mail). */
function decideWithoutDiversion<S>(input: NoticeOutcomeInput<S>): Map<string, Decision<S>> {
  const plan: OutcomePlan = input.plan.kind === 'divert' ? { kind: 'defer', code: input.plan.code, reason: input.plan.reason } : input.plan;
  const attempts = input.attempts.map((attempt): CandidateAttempt<S> => {
    if (attempt.kind === 'no-session' && attempt.classification === 'non-compliant') return { ...attempt, classification: 'transient' };
    if (attempt.kind === 'transaction' && attempt.result.kind === 'failed' && attempt.result.classification === 'non-compliant') {
      return { ...attempt, result: { ...attempt.result, classification: 'transient' } };
    }
    return attempt;
  });
  const decisions = decideOutcomes({ plan, recipients: input.recipients, attempts, requireTls: false, aborted: input.aborted ?? false, expired: input.expired ? 'bounce' : null });
  for (const decision of decisions.values()) {
    // Nothing above should divert (a deliver plan with no attempt at all would): never let it.
    if (decision.outcome === 'diverted') {
      const expiring = input.expired === true && input.aborted !== true;
      decision.outcome = expiring ? 'bounced' : 'deferred';
      if (expiring) {
        decision.reply ??= `last problem: ${decision.reason}`;
        decision.reason = REASON.queueTimeExpired;
        decision.status = EXPIRED_STATUS;
      }
    }
  }
  return decisions;
}
