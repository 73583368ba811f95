import type { Candidate, DeliveryPlan } from '../policy';
import type { StsPolicy } from '../policy/mta-sts';
import type { MxSession } from '../smtp-client';
import type { AddressAttempt, CandidateConnection } from '../smtp-client/connect';
import type { TlsSessionFacts } from '../evidence/tls-session';

/** What a job's TLS decisions are reported under; null when they are not reported. */
export type SessionReport = {
  domain: string;
  sts: StsPolicy | null;
  /** MX hosts an MTA-STS testing policy does not list: their sessions fail that policy though mail still goes. */
  notInTestingPolicy: Set<string>;
  events: TlsSessionFacts[];
} | null;

/**
 * A job's report (RFC 8460 counting), once the engine has decided its TLS decisions are reported. Starts with
 * what the plan decided without connecting: an MTA-STS policy that could not be fetched, and each MX left out
 * (the observer decides which of those count; an unresolvable MX does not).
 */
export function sessionReport(plan: DeliveryPlan, at: number): NonNullable<SessionReport> {
  const policy = plan.mtaSts?.policy;
  const sts = policy && policy.mode !== 'none' ? policy : null;
  const notInTestingPolicy = new Set(plan.kind === 'deliver' ? plan.wouldFail.filter((w) => w.reason === 'mx-not-in-policy').map((w) => w.host) : []);
  const report = { domain: plan.domain, sts, notInTestingPolicy, events: [] as TlsSessionFacts[] };
  const base = { at, domain: plan.domain, sts, address: null, localAddress: null };
  if (plan.mtaSts?.errorType) {
    report.events.push({ ...base, mx: null, dane: null, failure: { code: plan.mtaSts.errorType, reason: plan.mtaSts.error ?? plan.mtaSts.errorType, certificateError: null } });
  }
  for (const host of plan.hosts) {
    if (host.excluded) report.events.push({ ...base, mx: host.host, dane: host.dane, failure: { code: host.excluded, reason: host.excluded, certificateError: null } });
  }
  return report;
}

/** A connection's TLS decisions as events: each address that got as far as a TLS decision (transient failures are left to the observer). */
export function reportConnection(report: NonNullable<SessionReport>, candidate: Candidate, result: CandidateConnection, at: number): void {
  for (const attempt of result.attempts) {
    report.events.push({
      at,
      domain: report.domain,
      sts: report.sts,
      mx: candidate.host,
      dane: candidate.dane,
      address: attempt.address,
      localAddress: attemptLocalAddress(attempt, result),
      failure: attemptFailure(attempt, result) ?? testingFailure(report, candidate, attempt, result),
    });
  }
}

/** The session an address attempt ended with, when it got one (the open compliant one, or the closed judged one). */
function attemptSession(attempt: AddressAttempt, result: CandidateConnection): MxSession | null {
  const session = result.session;
  return session && attempt.error === null && session.target.address === attempt.address ? session : null;
}

function attemptLocalAddress(attempt: AddressAttempt, result: CandidateConnection): string | null {
  if (attempt.error) return attempt.error.localAddress ?? null;
  return attemptSession(attempt, result)?.socket?.localAddress ?? null;
}

/** null for a compliant session; the failure's code otherwise (the observer leaves transient ones out). */
function attemptFailure(attempt: AddressAttempt, result: CandidateConnection): TlsSessionFacts['failure'] {
  if (attempt.error) return { code: attempt.error.code, reason: attempt.error.message, certificateError: null };
  const judgement = attempt.judgement;
  if (!judgement || judgement.compliant) return null;
  return { code: judgement.code, reason: judgement.reason, certificateError: attemptSession(attempt, result)?.certificate.error ?? null };
}

/**
 * A session MTA-STS testing mode lets through although the policy fails (RFC 8461 §5: report, do not act): the
 * MX is not in the policy, or its certificate would not pass enforce. Null when nothing would have failed.
 */
function testingFailure(report: NonNullable<SessionReport>, candidate: Candidate, attempt: AddressAttempt, result: CandidateConnection): TlsSessionFacts['failure'] {
  if (attempt.error || !attempt.judgement?.compliant) return null;
  if (report.notInTestingPolicy.has(candidate.host)) return { code: 'mx-not-in-policy', reason: `${candidate.host} is not in the MTA-STS testing policy`, certificateError: null };
  const would = attempt.judgement.wouldFail.find((w) => w.host === candidate.host);
  return would ? { code: would.reason, reason: would.detail ?? would.reason, certificateError: attemptSession(attempt, result)?.certificate.error ?? null } : null;
}
