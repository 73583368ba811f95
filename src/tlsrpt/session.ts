import type { DaneHostPolicy } from '../policy/dane/types';
import type { StsPolicy } from '../policy/mta-sts';

/**
 * One TLS decision to count, as the delivery engine reports it (its TlsSessionObserver event has this shape;
 * relay.ts wires the two, so neither module imports the other).
 */
export interface TlsSessionFacts {
  at: number;
  /** The policy domain (the recipient domain), lower case. */
  domain: string;
  /** The MTA-STS policy in force (enforce or testing), null without one. */
  sts: StsPolicy | null;
  /** The MX host; null for a domain-wide failure (an MTA-STS fetch). */
  mx: string | null;
  dane: DaneHostPolicy | null;
  /** The MX address connected to; null when there was no connection. */
  address: string | null;
  /** Our end of the connection, when known. */
  localAddress: string | null;
  /** null: a compliant session; else the relay's failure code. */
  failure: { code: string; reason: string; certificateError: string | null } | null;
}
