import type { AttemptClass } from '../outcome';
import type { Candidate } from '../policy/plan';
import { MxSessionError } from './classify';
import { judgeSession, type SessionJudgement } from './judge';
import { closeMxSession, openMxSession, type MxSession, type MxSessionOptions, type MxTarget } from './session';

/** One address tried for a candidate. */
export interface AddressAttempt {
  address: string;
  /** null when a session was established. */
  error: MxSessionError | null;
  judgement: SessionJudgement | null;
}

export type CandidateConnection =
  /** A compliant session, still open: send on `session.connection`, close with closeMxSession. */
  | { ok: true; session: MxSession; judgement: SessionJudgement; attempts: AddressAttempt[] }
  /** No compliant session. `session` is the closed non-compliant one, when the handshake got that far (evidence). */
  | { ok: false; classification: AttemptClass; code: string; reason: string; attempts: AddressAttempt[]; session: MxSession | null; starttlsAdvertised: boolean | null };

/**
 * Connects to a candidate MX: its addresses in order until one answers. A transient failure moves
 * on to the next address; a non-compliant server does not (its other addresses are the same
 * server). A compliant session is returned open; anything else is closed.
 */
export async function connectCandidate(
  candidate: Pick<Candidate, 'host' | 'addresses' | 'port' | 'servername' | 'requireValidCert' | 'stsTesting'> & Partial<Pick<Candidate, 'dane'>>,
  options: MxSessionOptions,
  /** Keep each session's certificate chain (`sealgate check --mx`); delivery leaves it out. */
  inspect = false,
): Promise<CandidateConnection> {
  const attempts: AddressAttempt[] = [];
  let last: Extract<CandidateConnection, { ok: false }> = {
    ok: false,
    classification: 'transient',
    code: 'no-address',
    reason: `${candidate.host} has no address to try`,
    attempts,
    session: null,
    starttlsAdvertised: null,
  };
  for (const address of candidate.addresses) {
    const target: MxTarget = { host: candidate.host, address, port: candidate.port, servername: candidate.servername };
    let session: MxSession;
    try {
      session = await openMxSession(target, options, undefined, inspect, candidate.dane?.state === 'secure-tlsa');
    } catch (err) {
      if (!(err instanceof MxSessionError)) throw err;
      attempts.push({ address, error: err, judgement: null });
      last = { ...last, classification: err.classification, code: err.code, reason: err.message, starttlsAdvertised: err.starttlsAdvertised };
      if (err.classification === 'transient') continue;
      return last;
    }
    const judgement = judgeSession(session, candidate);
    attempts.push({ address, error: null, judgement });
    if (judgement.compliant) return { ok: true, session, judgement, attempts };
    await closeMxSession(session);
    return { ...last, classification: judgement.classification ?? 'non-compliant', code: judgement.code, reason: judgement.reason, session, starttlsAdvertised: session.starttlsAdvertised };
  }
  return last;
}
