/**
 * The RFC 8460 report (§4.4) as TypeScript types: field names exactly as the JSON has them. `mx-host` is an
 * array of patterns (erratum 6241).
 */

/** RFC 8460 §4.3 result types (the IANA "STARTTLS Validation Result Types" registry). */
export const RESULT_TYPES = [
  'starttls-not-supported',
  'certificate-host-mismatch',
  'certificate-expired',
  'certificate-not-trusted',
  'validation-failure',
  'tlsa-invalid',
  'dnssec-invalid',
  'dane-required',
  'sts-policy-fetch-error',
  'sts-policy-invalid',
  'sts-webpki-invalid',
] as const;

export type ResultType = (typeof RESULT_TYPES)[number];

export const POLICY_TYPES = ['sts', 'tlsa', 'no-policy-found'] as const;
export type PolicyType = (typeof POLICY_TYPES)[number];

/** The policy a session was made under (report `policies[].policy`, less the domain). */
export interface ReportPolicy {
  'policy-type': PolicyType;
  'policy-string': string[];
  'policy-domain': string;
  'mx-host': string[];
}

export interface FailureDetail {
  'result-type': ResultType;
  'sending-mta-ip'?: string;
  'receiving-mx-hostname'?: string;
  'receiving-mx-helo'?: string;
  'receiving-ip'?: string;
  'failed-session-count': number;
  'additional-information'?: string;
  'failure-reason-code'?: string;
}

export interface PolicyResult {
  policy: ReportPolicy;
  summary: { 'total-successful-session-count': number; 'total-failure-session-count': number };
  'failure-details': FailureDetail[];
}

export interface TlsReport {
  'organization-name': string;
  'date-range': { 'start-datetime': string; 'end-datetime': string };
  'contact-info': string;
  'report-id': string;
  policies: PolicyResult[];
}
