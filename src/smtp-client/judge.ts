import type { AttemptClass } from '../outcome';
import { describeRecord, matchChain, type DaneSessionResult } from '../policy/dane/match';
import type { Candidate, WouldFail } from '../policy/plan';
import type { MxSession } from './session';

/** Whether an established session may carry mail for a candidate, and what testing mode would have refused. */
export interface SessionJudgement {
  compliant: boolean;
  classification: AttemptClass | null;
  code: string;
  reason: string;
  wouldFail: WouldFail[];
  /** What DANE said about this session (null: DANE is off for the host). */
  dane?: DaneSessionResult | null;
}

/**
 * The NIST profile check of what was negotiated comes first, always. Then, for a host DANE governs (state
 * `secure-tlsa`), DANE alone decides: with usable TLSA records the chain must match one (requireValidCert,
 * WebPKI and MTA-STS are not consulted, so an MTA-STS policy never overrides a failing DANE check); with none
 * usable, TLS suffices. Any other host is judged on its certificate as the level and MTA-STS require.
 */
export function judgeSession(
  session: Pick<MxSession, 'profileCheck' | 'certificate' | 'target'> & Partial<Pick<MxSession, 'peerChainDer'>>,
  candidate: Pick<Candidate, 'requireValidCert' | 'stsTesting'> & Partial<Pick<Candidate, 'dane'>>,
  now: number = Date.now(),
): SessionJudgement {
  const { certificate, profileCheck, target } = session;
  const policy = candidate.dane ?? null;
  const daneApplies = policy?.state === 'secure-tlsa';
  let dane: DaneSessionResult | null = policy ? { state: policy.state, match: null, result: 'not-applicable' } : null;
  let daneProblem: { code: string; detail: string } | null = null;
  let daneNote = '';
  if (policy && daneApplies) {
    if (policy.usable.length === 0) {
      dane = { state: policy.state, match: null, result: 'no-usable-records' };
      daneNote = ' (DANE: no usable TLSA record, TLS mandatory, certificate not checked)';
    } else {
      const matched = matchChain(policy.usable, session.peerChainDer ?? [], { referenceNames: policy.referenceNames, now });
      if (matched.ok) {
        dane = { state: policy.state, match: matched.match, result: 'match' };
        daneNote = ` (DANE ${describeRecord(matched.match)} matched at depth ${matched.match.depth})`;
      } else {
        dane = { state: policy.state, match: null, result: matched.code };
        daneProblem = { code: matched.code, detail: `DANE: ${matched.reason}` };
      }
    }
  }

  const wouldFail: WouldFail[] = [];
  const certProblem = !certificate.trusted
    ? { code: 'certificate-untrusted', detail: `certificate not trusted (${certificate.error ?? 'unknown reason'})` }
    : !certificate.nameMatch
      ? { code: 'certificate-name-mismatch', detail: `certificate does not match ${target.servername ?? target.address}` }
      : null;
  if (!daneApplies && candidate.stsTesting && certProblem) wouldFail.push({ host: target.host, reason: certProblem.code, detail: certProblem.detail });

  if (!profileCheck.compliant) {
    return { compliant: false, classification: 'non-compliant', code: 'tls-profile', reason: `negotiated TLS outside the profile: ${profileCheck.problems.join('; ')}`, wouldFail, dane };
  }
  if (daneApplies) {
    if (daneProblem) return { compliant: false, classification: 'non-compliant', code: daneProblem.code, reason: daneProblem.detail, wouldFail, dane };
    return { compliant: true, classification: null, code: 'compliant', reason: `${profileCheck.negotiated.protocol} ${profileCheck.negotiated.cipher}${daneNote}`, wouldFail, dane };
  }
  if (candidate.requireValidCert && certProblem) {
    return { compliant: false, classification: 'non-compliant', code: certProblem.code, reason: certProblem.detail, wouldFail, dane };
  }
  const certNote = certProblem ? ` (certificate recorded, not required: ${certProblem.detail})` : '';
  return { compliant: true, classification: null, code: 'compliant', reason: `${profileCheck.negotiated.protocol} ${profileCheck.negotiated.cipher}${certNote}`, wouldFail, dane };
}
