import type { AttemptClass } from '../outcome';
import type { Candidate, WouldFail } from '../policy/plan';
import type { MxSession } from './session';

/** Whether an established session may carry mail for a candidate, and what testing mode would have refused. */
export interface SessionJudgement {
  compliant: boolean;
  classification: AttemptClass | null;
  code: string;
  reason: string;
  wouldFail: WouldFail[];
}

export function judgeSession(session: Pick<MxSession, 'profileCheck' | 'certificate' | 'target'>, candidate: Pick<Candidate, 'requireValidCert' | 'stsTesting'>): SessionJudgement {
  const wouldFail: WouldFail[] = [];
  const { certificate, profileCheck, target } = session;
  const certProblem = !certificate.trusted
    ? { code: 'certificate-untrusted', detail: `certificate not trusted (${certificate.error ?? 'unknown reason'})` }
    : !certificate.nameMatch
      ? { code: 'certificate-name-mismatch', detail: `certificate does not match ${target.servername ?? target.address}` }
      : null;
  if (candidate.stsTesting && certProblem) wouldFail.push({ host: target.host, reason: certProblem.code, detail: certProblem.detail });

  if (!profileCheck.compliant) {
    return { compliant: false, classification: 'non-compliant', code: 'tls-profile', reason: `negotiated TLS outside the profile: ${profileCheck.problems.join('; ')}`, wouldFail };
  }
  if (candidate.requireValidCert && certProblem) {
    return { compliant: false, classification: 'non-compliant', code: certProblem.code, reason: certProblem.detail, wouldFail };
  }
  const certNote = certProblem ? ` (certificate recorded, not required: ${certProblem.detail})` : '';
  return { compliant: true, classification: null, code: 'compliant', reason: `${session.profileCheck.negotiated.protocol} ${session.profileCheck.negotiated.cipher}${certNote}`, wouldFail };
}
