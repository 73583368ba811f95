import type { AttemptClass, CandidateAttempt } from '../outcome';
import { requireTlsEligibility, type Candidate, type DeliveryPlan } from '../policy';
import type { MxSession, SessionJudgement } from '../smtp-client';
import type { DaneEvidence, MxAttemptEvidence, PolicyEvidence } from '../evidence/delivery';

/* What DANE and REQUIRETLS add to the delivery loop: which candidates are not dialled, pool keys, and evidence fields. */

/**
 * A REQUIRETLS message never goes to an MX nothing authenticates (RFC 8689 §4.2.1): such a candidate is
 * not dialled, and counts as a non-compliant attempt (a transient one while a published MTA-STS policy
 * could not be fetched), so the outcome rule bounces with 5.7.30 when no MX is left, or defers.
 */
export function requireTlsSkip(candidate: Candidate, plan: Extract<DeliveryPlan, { kind: 'deliver' }>, at: number): CandidateAttempt<MxSession> | null {
  const eligibility = requireTlsEligibility(candidate, plan.mtaSts);
  if (eligibility.eligible) return null;
  const classification: AttemptClass = eligibility.transient ? 'transient' : 'non-compliant';
  const tried: MxAttemptEvidence = {
    mx: candidate.host,
    ip: null,
    at,
    class: classification,
    code: eligibility.code,
    reason: eligibility.reason,
    starttls: null,
    tls: null,
    certificate: null,
    reply: null,
  };
  return { kind: 'no-session', classification, code: eligibility.code, tried: [tried] };
}

/** The pool key part for DANE: a session judged under one TLSA RRset is not reused under another. */
export function danePoolKey(candidate: Candidate): string | null {
  const dane = candidate.dane;
  if (!dane) return null;
  return `${dane.state}:${dane.records.map((r) => `${r.usage}.${r.selector}.${r.matchingType}.${r.data}`).join(',')}`;
}

/** What DANE said at one attempt; without a judgement (no TLS session), only the host's state. */
export function daneEvidence(candidate: Candidate, judgement: SessionJudgement | null | undefined): DaneEvidence | null {
  if (!candidate.dane) return null;
  if (judgement?.dane) return { state: judgement.dane.state, match: judgement.dane.match, result: judgement.dane.result };
  return { state: candidate.dane.state, match: null, result: candidate.dane.state === 'secure-tlsa' ? 'not-checked' : 'not-applicable' };
}

export function withDane(attempt: MxAttemptEvidence, candidate: Candidate, judgement: SessionJudgement): MxAttemptEvidence {
  return candidate.dane ? { ...attempt, dane: daneEvidence(candidate, judgement) } : attempt;
}

/** The recipient's policy evidence names the DANE state of the MX used, when DANE is on for the plan. */
export function withDanePolicy(policy: PolicyEvidence, plan: DeliveryPlan, session: MxSession | undefined): PolicyEvidence {
  if (!plan.hosts.some((host) => host.dane !== null)) return policy;
  const used = session ? plan.hosts.find((host) => host.host === session.target.host) : undefined;
  return { ...policy, dane: used?.dane?.state ?? null };
}
