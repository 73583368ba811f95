import type { DaneHostPolicy } from '../policy/dane/types';
import type { StsPolicy } from '../policy/mta-sts';

/**
 * One TLS decision the delivery engine made for a policy domain, as facts (what TLS-RPT makes of them is the
 * tlsrpt module's business): a new connection to an MX address that got as far as a TLS decision (a pooled
 * reuse is not one), or a decision without a connection (an MX the plan left out for a policy reason, an
 * MTA-STS policy that could not be fetched). Transient network failures are not reported. Declared here, below
 * both, so the engine that reports these and the TLS-RPT counting that consumes them share one shape without
 * importing each other.
 */
export interface TlsSessionFacts {
  at: number;
  /** The recipient domain (RFC 8460's policy domain), lower case. */
  domain: string;
  /** The MTA-STS policy in force (enforce or testing), null without one. */
  sts: StsPolicy | null;
  /** The MX host; null for a domain-wide failure (MTA-STS fetch). */
  mx: string | null;
  /** DANE for that MX (null: off or not applicable). */
  dane: DaneHostPolicy | null;
  /** The MX address connected to; null when there was no connection. */
  address: string | null;
  /** Our end of the connection (the socket's local address), when known. */
  localAddress: string | null;
  /** null: a compliant session. Otherwise the relay's code (starttls-not-offered, certificate-untrusted, mx-not-in-policy, sts-policy-fetch-error, ...). */
  failure: { code: string; reason: string; certificateError: string | null } | null;
}
