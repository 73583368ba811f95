import type { MtaStsResult } from './mta-sts';
import type { Candidate } from './plan';

/**
 * RFC 8689 §4.2.1: which MX hosts may receive a message sent with REQUIRETLS. Only one whose identity
 * the relay has authenticated before connecting: by DANE (secure TLSA records it can match) or by an
 * MTA-STS policy in enforce mode that names it. The rest of the requirements are checked on the wire:
 * a valid certificate (requireValidCert, or the DANE match), and REQUIRETLS in the MX's EHLO after
 * STARTTLS (the SMTP client refuses to send the parameter to an MX that does not offer it).
 */

/** Attempt code of an MX skipped because nothing authenticates it for a REQUIRETLS message. */
export const REQUIRETLS_UNAUTHENTICATED_MX = 'requiretls-unauthenticated-mx';
/** Attempt code of an MX skipped while the domain's published MTA-STS policy could not be fetched (transient: retried). */
export const REQUIRETLS_POLICY_UNAVAILABLE = 'requiretls-mta-sts-unavailable';

export type RequireTlsEligibility =
  /** May receive the message, if it also passes the session checks and advertises REQUIRETLS. */
  | { eligible: true; via: 'dane' | 'mta-sts' }
  /**
   * Must not be tried. `transient` when the answer may change on a later attempt (the domain publishes
   * MTA-STS but its policy could not be fetched); otherwise nothing will make this MX eligible.
   */
  | { eligible: false; code: string; transient: boolean; reason: string };

export function requireTlsEligibility(
  candidate: Pick<Candidate, 'host' | 'dane' | 'stsMatch' | 'stsTesting'>,
  mtaSts: Pick<MtaStsResult, 'record' | 'policy' | 'errorType' | 'error'> | null,
): RequireTlsEligibility {
  const { dane } = candidate;
  if (dane?.state === 'secure-tlsa') {
    // DANE applies, so it alone decides (RFC 7672 over MTA-STS): only usable records authenticate.
    if (dane.usable.length > 0) return { eligible: true, via: 'dane' };
    return unauthenticated(candidate.host, 'its TLSA records are DNSSEC-secure but none is usable (usage 0/1 or unknown): TLS without authentication');
  }
  if (dane?.state === 'bogus') {
    // The planner leaves such a host out; a failed TLSA lookup may pass, so it is never a reason to bounce.
    return { eligible: false, code: REQUIRETLS_UNAUTHENTICATED_MX, transient: true, reason: `REQUIRETLS needs an authenticated MX; the TLSA lookup of ${candidate.host} failed (DANE bogus)` };
  }
  if (candidate.stsMatch === true && !candidate.stsTesting) return { eligible: true, via: 'mta-sts' };
  if (candidate.stsMatch !== null && candidate.stsTesting) return unauthenticated(candidate.host, 'the MTA-STS policy is in testing mode, which authenticates nothing');
  // A fetch that failed (or met a bad HTTPS certificate, which an attacker on the path can cause) may work
  // later: wait for the policy rather than bounce. A policy that was fetched and is invalid is the domain's.
  if (mtaSts?.record && !mtaSts.policy && (mtaSts.errorType === 'sts-policy-fetch-error' || mtaSts.errorType === 'sts-webpki-invalid')) {
    return {
      eligible: false,
      code: REQUIRETLS_POLICY_UNAVAILABLE,
      transient: true,
      reason: `the domain publishes MTA-STS but its policy could not be fetched (${mtaSts.error ?? 'fetch failed'}); REQUIRETLS waits for it`,
    };
  }
  const dnssec = dane ? `DANE ${dane.state}` : 'no DANE';
  return unauthenticated(candidate.host, `${dnssec} and no MTA-STS enforce policy names it`);
}

function unauthenticated(host: string, why: string): RequireTlsEligibility {
  return { eligible: false, code: REQUIRETLS_UNAUTHENTICATED_MX, transient: false, reason: `REQUIRETLS needs an authenticated MX; ${host} is not: ${why}` };
}
