import { EXPIRED_STATUS, REASON } from './codes';
import { decideOutcomes, type CandidateAttempt, type Decision, type OutcomePlan } from './decide';

/**
 * The one exception to "compliant TLS or the portal": a portal notice (the link, a code, a
 * reminder, a note to the sender) goes to a domain that already failed the TLS policy, so it
 * cannot divert to the portal it announces. It carries no message content. It is delivered with
 * opportunistic TLS (STARTTLS when offered, else plaintext). When it cannot be delivered it defers,
 * and at the end of the queue time it bounces. It never diverts.
 */

/** How a message is delivered: under the TLS policy (every message), or opportunistically (portal notices only). */
export type DeliveryMode = 'compliant' | 'opportunistic';

/** Only a message the portal queued as a notice (`params.notice`) is delivered opportunistically. */
export function deliveryMode(params: { notice?: unknown }): DeliveryMode {
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
    if (decision.outcome === 'delivered') decision.reason = REASON.noticeDelivered;
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
