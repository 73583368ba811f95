/**
 * DANE for SMTP (RFC 7672): the shapes the planner, the session judge, evidence and `sealgate check`
 * share. The decisions live next to this file; this one only names things.
 */

/** One TLSA record (RFC 6698) as published at `_25._tcp.<mx host>`; `data` is lower-case hex. */
export interface TlsaRecord {
  usage: number;
  selector: number;
  matchingType: number;
  data: string;
}

/**
 * The DANE state of one MX host, as evidence and `sealgate check` name it:
 * - `secure-tlsa`: the MX RRset (or the domain, for an implicit MX) and the TLSA RRset are DNSSEC-secure;
 *   DANE alone decides whether this MX is authenticated.
 * - `insecure`: some answer on the way was not signed; DANE does not apply.
 * - `bogus`: the TLSA lookup failed (SERVFAIL: a bad signature, or no answer); this MX is not used.
 * - `no-tlsa`: secure, but no TLSA records; DANE does not apply.
 */
export type DaneState = 'secure-tlsa' | 'insecure' | 'bogus' | 'no-tlsa';

/** What the planner found for one MX host. Null where DANE is off (no validating resolver) or does not apply (a route). */
export interface DaneHostPolicy {
  state: DaneState;
  /** The TLSA records as published (only with `secure-tlsa`). */
  records: TlsaRecord[];
  /** The usable ones: usage 2 (DANE-TA) or 3 (DANE-EE) with a known selector and matching type. None usable still makes TLS mandatory. */
  usable: TlsaRecord[];
  /** Names a DANE-TA certificate may match: the MX host, its CNAME target (RFC 7672 §2.2.2) and the next-hop domain. */
  referenceNames: string[];
  /** Where the TLSA RRset was found (`_25._tcp.<host>`); null when none was. */
  tlsaName: string | null;
  /** Why this state, in words (evidence and `sealgate check`). */
  reason: string;
}

/** The record a certificate chain matched, and at which depth (0: the server's own certificate). */
export interface DaneMatch extends TlsaRecord {
  depth: number;
}
