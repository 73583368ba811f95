import type { TlsSessionFacts } from '../evidence/tls-session';
import type { DaneHostPolicy } from '../policy/dane/types';
import type { StsPolicy } from '../policy/mta-sts';
import type { DetailKey, PolicyKey } from './keys';
import type { ResultType } from './types';

/**
 * The relay's failure codes as RFC 8460 §4.3 result types. A code missing here is not a TLS failure a
 * domain owner can act on (transient network trouble, a refused transaction) and is not counted.
 */
const RESULT_OF_CODE: Record<string, ResultType> = {
  // §4.3.1 negotiation failures
  'starttls-not-offered': 'starttls-not-supported',
  // A 5xx answer to STARTTLS, or to EHLO (so no STARTTLS at all): the MX does not do STARTTLS for us.
  'starttls-refused': 'starttls-not-supported',
  'ehlo-refused': 'starttls-not-supported',
  'certificate-name-mismatch': 'certificate-host-mismatch',
  // certificate-untrusted: certificate-expired or certificate-not-trusted by its OpenSSL reason (resultType).
  'certificate-untrusted': 'certificate-not-trusted',
  // No TLS session within the NIST profile, or one outside it: "any other failure" (failure-reason-code says which).
  'tls-handshake-failed': 'validation-failure',
  'tls-profile': 'validation-failure',
  // §4.3.2 DANE. No TLSA record matched: mox reports validation-failure with reason dane-no-match; tlsa-invalid
  // is for records that are themselves unusable (RFC 8460 §4.3.2), which a mismatch does not show.
  'dane-no-match': 'validation-failure',
  // DANE-TA: the chain does not lead to the trust anchor the TLSA record names.
  'dane-ta-chain': 'certificate-not-trusted',
  'dane-ta-expired': 'certificate-expired',
  'dane-ta-name-mismatch': 'certificate-host-mismatch',
  // The TLSA lookup was bogus (SERVFAIL): the planner left that MX out.
  'dane-tlsa-bogus': 'dnssec-invalid',
  // §4.3.3 MTA-STS
  'sts-policy-fetch-error': 'sts-policy-fetch-error',
  'sts-policy-invalid': 'sts-policy-invalid',
  'sts-webpki-invalid': 'sts-webpki-invalid',
  // The MX is not in the enforced policy: the RFC has no type of its own for it, so validation-failure with the
  // reason code (as mox does).
  'mx-not-in-policy': 'validation-failure',
};

/** The result type of a relay failure code; null when such a failure is not counted. */
export function resultType(code: string, certificateError: string | null = null): ResultType | null {
  if (code === 'certificate-untrusted' && certificateError === 'CERT_HAS_EXPIRED') return 'certificate-expired';
  return RESULT_OF_CODE[code] ?? null;
}

/** The relay codes that are counted (documentation and tests). */
export const COUNTED_CODES: readonly string[] = Object.keys(RESULT_OF_CODE);

/** "u s m hex" per TLSA record, as `policy-string` lists them for a tlsa policy. */
function tlsaStrings(dane: DaneHostPolicy): string[] {
  return dane.records.map((r) => `${r.usage} ${r.selector} ${r.matchingType} ${r.data}`);
}

/** The policy's lines as `policy-string` lists them for an sts policy (RFC 8460 §4.4: the policy as fetched). */
export function stsStrings(policy: StsPolicy): string[] {
  return ['version: STSv1', `mode: ${policy.mode}`, ...policy.mx.map((mx) => `mx: ${mx}`), `max_age: ${policy.maxAge}`];
}

/**
 * The policy a session was made under: `tlsa` when DANE applied to the MX (secure TLSA records; DANE then
 * decides alone), else `sts` with an MTA-STS policy in enforce or testing mode, else `no-policy-found`.
 */
export function sessionPolicy(event: Pick<TlsSessionFacts, 'mx' | 'dane' | 'sts'>): PolicyKey {
  if (event.mx !== null && event.dane?.state === 'secure-tlsa') return { type: 'tlsa', strings: tlsaStrings(event.dane), mxHost: [event.mx] };
  if (event.sts && event.sts.mode !== 'none') return { type: 'sts', strings: stsStrings(event.sts), mxHost: [...event.sts.mx] };
  return { type: 'no-policy-found', strings: [], mxHost: [] };
}

/** What one event adds to the counters: the policy, and the failure detail (null: a success); null when not counted. */
export function countOf(event: TlsSessionFacts): { policy: PolicyKey; detail: DetailKey | null } | null {
  const policy = sessionPolicy(event);
  if (!event.failure) return { policy, detail: null };
  const type = resultType(event.failure.code, event.failure.certificateError);
  if (!type) return null;
  return { policy, detail: failureDetail(event, type) };
}

/** The longest failure-reason-code kept: a reason, not a transcript. */
const MAX_REASON = 200;

function failureDetail(event: TlsSessionFacts, type: ResultType): DetailKey {
  const failure = event.failure!;
  // A validation-failure is "any other failure": its reason text says which (the profile problem, the OpenSSL error).
  const reason =
    failure.code === 'certificate-untrusted' && failure.certificateError
      ? failure.certificateError
      : type === 'validation-failure' && failure.reason
        ? `${failure.code}: ${failure.reason}`.slice(0, MAX_REASON)
        : failure.code;
  return {
    'result-type': type,
    ...(event.localAddress ? { 'sending-mta-ip': event.localAddress } : {}),
    ...(event.mx ? { 'receiving-mx-hostname': event.mx } : {}),
    ...(event.address ? { 'receiving-ip': event.address } : {}),
    'failure-reason-code': reason,
  };
}

/**
 * A note beside a successful session: secure TLSA records that are all unusable (usage 0/1, unknown selector or
 * matching type) make TLS mandatory without authenticating the MX (RFC 7672 §2.2). The session is no failure, so
 * like mox it is reported as a `tlsa-invalid` detail with no failed sessions (a count of 0), telling the domain
 * owner their records do nothing. Null otherwise.
 */
export function noteOf(event: TlsSessionFacts): DetailKey | null {
  const dane = event.dane;
  if (event.failure || !dane || dane.state !== 'secure-tlsa' || dane.records.length === 0 || dane.usable.length > 0) return null;
  return { 'result-type': 'tlsa-invalid', ...(event.mx ? { 'receiving-mx-hostname': event.mx } : {}), 'failure-reason-code': 'all-unusable-records' };
}
