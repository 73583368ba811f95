import { decideOutcomes, type AttemptClass, type CandidateAttempt, type RecipientOutcome, type TriedAddress } from '../outcome';
import type { Candidate, DeliveryPlan, PlannedHost, PolicyRuntime, WouldFail } from '../policy';
import type { NegotiatedTls } from '../policy/tls-profile';
import { closeMxSession, connectCandidate, diagnoseHandshake, type CandidateConnection, type CertificateFacts } from '../smtp-client';

/**
 * The domain check behind `sealgate check`: the delivery plan, then one probe per MX host (connect,
 * EHLO, STARTTLS, judge; no mail sent), and the verdict from the outcome rule the delivery engine
 * uses (src/outcome): the first compliant candidate delivers; a transient failure defers; when
 * every candidate is non-compliant it diverts, with the shared cause as its code.
 */

export type Verdict = 'deliver' | 'divert' | 'defer' | 'bounce';

/** Stable JSON names (scripts depend on them); add fields freely, never rename. */
export interface CheckReport {
  domain: string;
  verdict: Verdict;
  reason: string;
  /** Short machine-readable reason. */
  code: string;
  /** MX host mail would go to (deliver only). */
  via: string | null;
  policy: DeliveryPlan['policy'];
  mtaSts: {
    record: { id: string } | null;
    policy: { mode: string; mx: string[]; maxAge: number } | null;
    source: 'fetched' | 'cache' | null;
    error: string | null;
  };
  mx: MxReport[];
  /** Failures MTA-STS testing mode would have caused under enforce. */
  wouldFail: WouldFail[];
}

export interface MxReport {
  host: string;
  preference: number;
  addresses: string[];
  /** The address the facts below come from. */
  address: string | null;
  port: number;
  starttls: boolean | null;
  tls: { protocol: string | null; cipher: string | null; group: string | null } | null;
  certificate: (Pick<CertificateFacts, 'subject' | 'issuer' | 'validTo' | 'trusted' | 'nameMatch'> & { error: string | null }) | null;
  stsMatch: boolean | null;
  /** May carry mail under the domain's policy. */
  compliant: boolean;
  /** non-compliant | transient | permanent | null (compliant or not probed). */
  classification: AttemptClass | null;
  code: string;
  reason: string;
  /** For a non-compliant handshake: what the server negotiates with a permissive client (evidence only). */
  offered: { protocol: string | null; cipher: string | null; group: string | null } | null;
}

export const VERDICT_EXIT_CODES: Record<Verdict, number> = { deliver: 0, divert: 3, defer: 4, bounce: 5 };

export async function checkDomain(domain: string, runtime: Pick<PolicyRuntime, 'planner' | 'sessionOptions'>, options: { diagnose?: boolean } = {}): Promise<CheckReport> {
  const plan = await runtime.planner.planDelivery(domain);
  const candidates = plan.kind === 'deliver' ? plan.candidates : [];
  const mx: MxReport[] = [];
  const probeWouldFail: WouldFail[] = [];
  const attempts = new Map<string, CandidateAttempt<string>>();
  for (const host of plan.hosts) {
    const candidate = candidates.find((c) => c.host === host.host);
    const probed = await probeHost(host, candidate, runtime, options.diagnose ?? true);
    if (candidate && probed.attempt) attempts.set(candidate.host, probed.attempt);
    mx.push(probed.report);
    probeWouldFail.push(...probed.wouldFail);
    if (candidate?.stsTesting && probed.report.classification === 'non-compliant') {
      probeWouldFail.push({ host: host.host, reason: probed.report.code, detail: probed.report.reason });
    }
  }

  const report: CheckReport = {
    domain: plan.domain,
    verdict: 'defer',
    reason: '',
    code: '',
    via: null,
    policy: plan.policy,
    mtaSts: {
      record: plan.mtaSts?.record ?? null,
      policy: plan.mtaSts?.policy ? { mode: plan.mtaSts.policy.mode, mx: plan.mtaSts.policy.mx, maxAge: plan.mtaSts.policy.maxAge } : null,
      source: plan.mtaSts?.source ?? null,
      error: plan.mtaSts?.error ?? null,
    },
    mx,
    wouldFail: plan.kind === 'deliver' ? [...plan.wouldFail, ...probeWouldFail] : [],
  };

  // The same rule as delivery, over the candidates in the order delivery tries them, for one
  // stand-in recipient (a check has no message, so no REQUIRETLS and no RCPT replies).
  const decision = decideOutcomes({ plan, recipients: [domain], attempts: candidates.flatMap((c) => attempts.get(c.host) ?? []) }).get(domain)!;
  const verdict = VERDICT_OF[decision.outcome];
  if (plan.kind !== 'deliver') return { ...report, verdict, code: decision.reason, reason: decision.detail ?? decision.reason };
  // A host whose address lookup failed temporarily might have been the compliant one: it counts as transient.
  const tried = mx.filter((entry) => candidates.some((c) => c.host === entry.host) || entry.code === 'address-lookup-temporary');
  if (verdict === 'deliver') {
    const winner = tried.find((entry) => entry.host === decision.session)!;
    return { ...report, verdict, code: decision.reason, via: winner.host, reason: `deliver via ${winner.host} (${winner.reason})` };
  }
  if (verdict === 'defer') return { ...report, verdict, code: decision.reason, reason: `no MX accepted a compliant session; transient failures: ${summarise(tried, 'transient')}` };
  if (verdict === 'divert') return { ...report, verdict, code: decision.reason, reason: `every MX is non-compliant: ${summarise(tried, 'non-compliant') || 'no MX host was a candidate'}` };
  return { ...report, verdict, code: decision.reason, reason: decision.detail ?? decision.reply ?? decision.reason };
}

const VERDICT_OF: Record<RecipientOutcome, Verdict> = { delivered: 'deliver', diverted: 'divert', deferred: 'defer', bounced: 'bounce' };

function summarise(entries: readonly MxReport[], classification: AttemptClass): string {
  return entries
    .filter((entry) => entry.classification === classification)
    .map((entry) => `${entry.host}: ${entry.reason}`)
    .join('; ');
}

function blankReport(host: PlannedHost): MxReport {
  return {
    host: host.host,
    preference: host.preference,
    addresses: host.addresses,
    address: null,
    port: host.port,
    starttls: null,
    tls: null,
    certificate: null,
    stsMatch: host.stsMatch,
    compliant: false,
    classification: host.excluded === 'address-lookup-temporary' ? 'transient' : null,
    code: host.excluded ?? 'not-probed',
    reason: host.error?.message ?? host.excluded ?? 'not probed',
    offered: null,
  };
}

function tlsSummary(negotiated: NegotiatedTls): MxReport['tls'] {
  return { protocol: negotiated.protocol, cipher: negotiated.cipher, group: negotiated.group };
}

/**
 * Probes one MX host the way the delivery engine connects (connectCandidate), then quits. A host
 * left out of the plan (e.g. not in an enforce policy) is still probed for the evidence, judged as
 * a verify-level host, and never counted as compliant.
 */
async function probeHost(
  host: PlannedHost,
  candidate: Candidate | undefined,
  runtime: Pick<PolicyRuntime, 'sessionOptions'>,
  diagnose: boolean,
): Promise<{ report: MxReport; wouldFail: WouldFail[]; attempt: CandidateAttempt<string> | null }> {
  const report = blankReport(host);
  // A candidate without addresses still goes to connectCandidate, as in delivery (it fails at once, transient).
  if (host.addresses.length === 0 && !candidate) return { report, wouldFail: [], attempt: null };
  const target = candidate ?? { host: host.host, addresses: host.addresses, port: host.port, servername: host.host, requireValidCert: true, stsTesting: false };
  const result = await connectCandidate(target, runtime.sessionOptions);
  const session = result.session;
  if (result.ok) await closeMxSession(result.session);
  const lastAttempt = result.attempts.at(-1);
  const facts: MxReport = {
    ...report,
    address: lastAttempt?.address ?? null,
    starttls: session ? true : result.ok ? true : result.starttlsAdvertised,
    tls: session ? tlsSummary(session.negotiated) : null,
    certificate: session ? pickCertificate(session.certificate) : null,
  };
  const excluded = candidate ? null : host.excluded;
  if (excluded) {
    const seen = result.ok ? result.judgement.reason : result.reason;
    return {
      report: { ...facts, compliant: false, classification: 'non-compliant', code: excluded, reason: `${excludedReason(excluded)}; the session itself: ${seen}` },
      wouldFail: [],
      attempt: null,
    };
  }
  const attempt = probeAttempt(host.host, result);
  if (result.ok) {
    return { report: { ...facts, compliant: true, classification: null, code: result.judgement.code, reason: result.judgement.reason }, wouldFail: result.judgement.wouldFail, attempt };
  }
  let failed: MxReport = { ...facts, compliant: false, classification: result.classification, code: result.code, reason: result.reason };
  const wouldFail = result.attempts.flatMap((attempt) => attempt.judgement?.wouldFail ?? []);
  if (result.code === 'tls-handshake-failed' && diagnose && failed.address) {
    const offered = await diagnoseHandshake({ host: host.host, address: failed.address, port: host.port, servername: target.servername }, runtime.sessionOptions);
    if (offered) {
      failed = {
        ...failed,
        offered: tlsSummary(offered),
        reason: `${failed.reason}; the server negotiates ${offered.protocol} ${offered.cipher}${offered.group ? ` (${offered.group})` : ''} with a permissive client`,
      };
    }
  }
  return { report: failed, wouldFail, attempt };
}

/** A probe as the outcome rule sees an attempt; the session handle is the host name. */
function probeAttempt(host: string, result: CandidateConnection): CandidateAttempt<string> {
  // The same evidence delivery records: every address that did not give a compliant session.
  const tried: TriedAddress[] = result.attempts
    .filter((attempt) => !(result.ok && attempt.error === null && attempt.judgement?.compliant))
    .map((attempt) => ({
      mx: host,
      ip: attempt.address,
      code: attempt.error?.code ?? attempt.judgement?.code ?? 'unknown',
      reason: attempt.error ? attempt.error.message : (attempt.judgement?.reason ?? 'unknown'),
      reply: attempt.error?.reply ?? null,
    }));
  return result.ok ? { kind: 'probed', session: host, tried } : { kind: 'no-session', classification: result.classification, code: result.code, tried };
}

function excludedReason(code: string): string {
  return code === 'mx-not-in-policy' ? 'not allowed by the MTA-STS enforce policy' : code;
}

function pickCertificate(certificate: CertificateFacts): MxReport['certificate'] {
  const { subject, issuer, validTo, trusted, nameMatch, error } = certificate;
  return { subject, issuer, validTo, trusted, nameMatch, error };
}
