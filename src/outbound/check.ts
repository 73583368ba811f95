import { decideOutcomes, type AttemptClass, type CandidateAttempt, type RecipientOutcome, type TriedAddress } from '../outcome';
import { isIP } from 'node:net';
import { DnsError, type Candidate, type DeliveryPlan, type PlannedHost, type PlanPolicy, type PolicyRuntime, type WouldFail } from '../policy';
import { mxMatchesPolicy } from '../policy/mta-sts/match';
import { DANE_TLSA_BOGUS, describeRecord } from '../policy/dane/match';
import type { DaneMatch, DaneState, TlsaRecord } from '../policy/dane/types';
import type { NegotiatedTls } from '../policy/tls-profile';
import {
  closeMxSession,
  connectCandidate,
  diagnoseHandshake,
  MxSessionError,
  openMxSession,
  permissiveTlsOptions,
  type CandidateConnection,
  type CertificateFacts,
  type ChainCertificate,
  type MxSession,
  type MxTarget,
  type SessionJudgement,
} from '../smtp-client';

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
  /** Whether DANE (RFC 7672) is on: only with a validating resolver (`dns.validating`). */
  daneEnabled: boolean;
}

/** DANE for one MX host in `sealgate check --json` (stable names). */
export interface MxDaneReport {
  state: DaneState;
  records: TlsaRecord[];
  /** The record the probed chain matched (null: none did, or none had to). */
  match: DaneMatch | null;
  reason: string;
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
  /** DANE for this host; null when DANE is off or does not apply (a route, a host whose addresses did not resolve). */
  dane: MxDaneReport | null;
}

export const VERDICT_EXIT_CODES: Record<Verdict, number> = { deliver: 0, divert: 3, defer: 4, bounce: 5 };

export async function checkDomain(
  domain: string,
  runtime: Pick<PolicyRuntime, 'planner' | 'sessionOptions'> & { resolver?: Pick<PolicyRuntime['resolver'], 'validating'> },
  options: { diagnose?: boolean } = {},
): Promise<CheckReport> {
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
    daneEnabled: runtime.resolver?.validating === true,
  };

  // The same rule as delivery, over the candidates in the order delivery tries them, for one
  // stand-in recipient (a check has no message, so no REQUIRETLS and no RCPT replies).
  const decision = decideOutcomes({ plan, recipients: [domain], attempts: candidates.flatMap((c) => attempts.get(c.host) ?? []) }).get(domain)!;
  const verdict = VERDICT_OF[decision.outcome];
  if (plan.kind !== 'deliver') return { ...report, verdict, code: decision.reason, reason: decision.detail ?? decision.reason };
  // A host whose address lookup failed temporarily might have been the compliant one: it counts as transient.
  const tried = mx.filter((entry) => candidates.some((c) => c.host === entry.host) || entry.code === 'address-lookup-temporary' || entry.code === DANE_TLSA_BOGUS);
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
    classification: host.excluded === 'address-lookup-temporary' || host.excluded === DANE_TLSA_BOGUS ? 'transient' : null,
    code: host.excluded ?? 'not-probed',
    reason: host.error?.message ?? (host.excluded === DANE_TLSA_BOGUS ? host.dane?.reason : undefined) ?? host.excluded ?? 'not probed',
    offered: null,
    dane: host.dane ? { state: host.dane.state, records: host.dane.records, match: null, reason: host.dane.reason } : null,
  };
}

/** The host's DANE report with what the probe found: the record matched, or why none did. */
function withProbedDane(report: MxReport, judgement: SessionJudgement | null | undefined): MxReport {
  if (!report.dane || !judgement?.dane) return report;
  const { match, result } = judgement.dane;
  const outcome =
    result === 'match' && match
      ? `the certificate chain matched ${describeRecord(match)} at depth ${match.depth}`
      : result === 'no-usable-records' || result === 'not-applicable'
        ? null
        : `${result}: ${judgement.reason}`;
  return { ...report, dane: { ...report.dane, match, reason: outcome ? `${report.dane.reason}; ${outcome}` : report.dane.reason } };
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
  // A host whose TLSA lookup was bogus is never used: probing it would say nothing delivery could act on.
  if (host.excluded === DANE_TLSA_BOGUS) return { report, wouldFail: [], attempt: null };
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
    const ok: MxReport = { ...facts, compliant: true, classification: null, code: result.judgement.code, reason: result.judgement.reason };
    return { report: withProbedDane(ok, result.judgement), wouldFail: result.judgement.wouldFail, attempt };
  }
  let failed: MxReport = withProbedDane({ ...facts, compliant: false, classification: result.classification, code: result.code, reason: result.reason }, result.attempts.at(-1)?.judgement);
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

/**
 * `sealgate check --mx HOST[:PORT] DOMAIN`: one host probed the way posttls-finger does it (no MX lookup),
 * judged under DOMAIN's policy (its level, and its MTA-STS policy when one is in force). Stable JSON names.
 */
export interface MxProbeReport {
  /** The next-hop domain whose policy applies. */
  domain: string;
  host: string;
  port: number;
  policy: PlanPolicy;
  /** The certificate must chain to a trusted root and match the host (level verify, MTA-STS enforce). */
  requireValidCert: boolean;
  /** Whether the host matches the domain's MTA-STS mx patterns; null without a policy in force. */
  stsMatch: boolean | null;
  /** An MTA-STS lookup problem (the probe goes on without the policy). */
  mtaStsError: string | null;
  addresses: string[];
  /** The address the facts below come from. */
  address: string | null;
  starttls: boolean | null;
  /** EHLO keywords before and after STARTTLS (null: the session did not get that far). */
  ehlo: { beforeTls: string[] | null; afterTls: string[] | null };
  tls: { protocol: string | null; cipher: string | null; group: string | null; groupBits: number | null } | null;
  /** The chain the server sent, leaf first (from the permissive handshake when the profile's failed). */
  chain: ChainCertificate[];
  /** The chain verifies to a trusted root (Node's roots plus outbound.extraCaFile) and is in its validity period. */
  verified: boolean | null;
  verifyError: string | null;
  /** The leaf certificate names the host (servername). */
  nameMatch: boolean | null;
  /** The NIST SP 800-52r2 profile check of what was negotiated (null: no session with the profile). */
  profile: { compliant: boolean; problems: string[] } | null;
  /** May carry mail for the domain under its policy. */
  compliant: boolean;
  classification: AttemptClass | null;
  code: string;
  reason: string;
  /** When the handshake with the profile failed: what the server negotiates with a permissive client (evidence only). */
  offered: { protocol: string | null; cipher: string | null; group: string | null } | null;
}

/** Exit codes of `sealgate check --mx`: compliant 0, non-compliant 3, transient (unreachable, 4xx) 4, permanent 5. */
export function probeExitCode(report: Pick<MxProbeReport, 'compliant' | 'classification'>): number {
  if (report.compliant) return 0;
  if (report.classification === 'transient') return 4;
  if (report.classification === 'permanent') return 5;
  return 3;
}

export async function probeMx(
  target: { host: string; port: number },
  rawDomain: string,
  runtime: Pick<PolicyRuntime, 'planner' | 'sessionOptions' | 'resolver' | 'mtaSts'>,
  options: { ipv6?: boolean } = {},
): Promise<MxProbeReport> {
  const domain = rawDomain.toLowerCase().replace(/\.$/, '');
  const host = target.host.toLowerCase().replace(/\.$/, '');
  const rule = runtime.planner.domainRule(domain);
  const sts = runtime.mtaSts ? await runtime.mtaSts.lookup(domain) : null;
  const active = sts?.policy && sts.policy.mode !== 'none' ? sts.policy : null;
  const stsMatch = active ? mxMatchesPolicy(host, active.mx) : null;
  const literal = isIP(host) !== 0;
  const report: MxProbeReport = {
    domain,
    host,
    port: target.port,
    policy: { source: active ? 'mta-sts' : rule.source, mode: sts?.policy?.mode ?? null, id: sts?.policyId ?? null, level: rule.level },
    requireValidCert: rule.level === 'verify' || active?.mode === 'enforce',
    stsMatch,
    mtaStsError: sts?.error ?? null,
    addresses: [],
    address: null,
    starttls: null,
    ehlo: { beforeTls: null, afterTls: null },
    tls: null,
    chain: [],
    verified: null,
    verifyError: null,
    nameMatch: null,
    profile: null,
    compliant: false,
    classification: 'transient',
    code: 'no-address',
    reason: '',
    offered: null,
  };
  try {
    report.addresses = literal ? [host] : await runtime.resolver.resolveAddresses(host, { ipv6: options.ipv6 ?? false });
  } catch (err) {
    // A name that does not exist stays so; SERVFAIL and timeouts may pass.
    const permanent = err instanceof DnsError && !err.temporary;
    return { ...report, classification: permanent ? 'permanent' : 'transient', code: 'address-lookup-failed', reason: `${host}: address lookup failed: ${(err as Error).message}` };
  }
  if (report.addresses.length === 0) return { ...report, reason: `${host} has no address` };

  const candidate = { host, addresses: report.addresses, port: target.port, servername: literal ? null : host, requireValidCert: report.requireValidCert, stsTesting: active?.mode === 'testing' };
  const result = await connectCandidate(candidate, runtime.sessionOptions, true);
  const lastAttempt = result.attempts.at(-1);
  report.address = lastAttempt?.address ?? null;
  let session: MxSession | null = result.session;
  if (result.ok) await closeMxSession(result.session);
  let verdict = result.ok
    ? { compliant: true, classification: null, code: result.judgement.code, reason: result.judgement.reason }
    : { compliant: false, classification: result.classification, code: result.code, reason: result.reason };
  if (session) report.profile = { compliant: session.profileCheck.compliant, problems: session.profileCheck.problems };
  const failure = lastAttempt?.error ?? null;
  report.starttls = session ? session.starttlsAdvertised : (failure?.starttlsAdvertised ?? null);
  report.ehlo.beforeTls = session ? session.ehloBeforeTls : (failure?.ehlo ?? null);

  // No session with the profile: one permissive handshake shows what the server has (chain, version, suite).
  if (!session && !result.ok && result.code === 'tls-handshake-failed' && report.address) {
    const where: MxTarget = { host, address: report.address, port: target.port, servername: candidate.servername };
    // The relay's trust store, so "verified" means what it means for delivery.
    const tls = { ...permissiveTlsOptions(candidate.servername), ...(runtime.sessionOptions.ca ? { ca: runtime.sessionOptions.ca } : {}) };
    const permissive = await openMxSession(where, runtime.sessionOptions, tls, true).catch((err: unknown) => {
      if (err instanceof MxSessionError) return null;
      throw err;
    });
    if (permissive) {
      await closeMxSession(permissive);
      session = permissive;
      report.offered = tlsSummary(permissive.negotiated);
      verdict = { ...verdict, reason: `${verdict.reason}; the server negotiates ${describeOffer(permissive.negotiated)} with a permissive client` };
    }
  }
  if (session) {
    const { protocol, cipher, group, groupBits } = session.negotiated;
    report.tls = { protocol, cipher, group, groupBits };
    report.ehlo.afterTls = session.ehlo;
    report.chain = session.chain ?? [];
    report.verified = session.certificate.trusted;
    report.verifyError = session.certificate.error;
    report.nameMatch = session.certificate.nameMatch;
  }
  if (rule.level === 'portal') {
    // The domain never gets mail over SMTP: the session is evidence only.
    verdict = { compliant: false, classification: 'non-compliant', code: 'portal-level', reason: `domain ${domain} is set to level portal (always divert); the session itself: ${verdict.reason}` };
  } else if (active?.mode === 'enforce' && !stsMatch) {
    verdict = {
      compliant: false,
      classification: 'non-compliant',
      code: 'mx-not-in-policy',
      reason: `${host} is not allowed by the MTA-STS enforce policy (${active.mx.join(', ')}); the session itself: ${verdict.reason}`,
    };
  }
  return { ...report, ...verdict };
}

function describeOffer(negotiated: NegotiatedTls): string {
  return `${negotiated.protocol ?? '?'} ${negotiated.cipher ?? '?'}${negotiated.group ? ` (${negotiated.group})` : ''}`;
}
