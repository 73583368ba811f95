import type { EvidenceClass } from '../outcome';
import type { Evidence, RecipientOutcome } from '../store/types';

/** TLS facts of one session, as negotiated (not as asked for). */
export interface TlsEvidence {
  protocol: string | null;
  cipher: string | null;
  group: string | null;
}

export interface CertificateEvidence {
  subject: string | null;
  issuer: string | null;
  validFrom: string | null;
  validTo: string | null;
  /** Chains to a trusted root and is within its validity period. */
  trusted: boolean;
  /** Names the MX host (RFC 6125 rules). */
  nameMatch: boolean;
  error?: string | null;
}

/** The TLSA record a certificate chain matched, and at which depth (0: the server's own certificate). */
export interface DaneMatchEvidence {
  usage: number;
  selector: number;
  matchingType: number;
  data: string;
  depth: number;
}

/**
 * DANE (RFC 7672) at one MX attempt, present only when DANE is on (a validating resolver). `state`: secure-tlsa,
 * insecure, bogus or no-tlsa; `result`: match, no-usable-records, a failure code (dane-no-match, dane-ta-chain,
 * dane-ta-expired, dane-ta-name-mismatch), not-applicable (DANE does not apply to the host) or not-checked (no TLS
 * session to check). Records and names only, never content.
 */
export interface DaneEvidence {
  state: string;
  match: DaneMatchEvidence | null;
  result: string;
}

export interface PolicyEvidence {
  /** What set the requirements: an MTA-STS policy, a per-domain rule, or the global default. */
  source: 'mta-sts' | 'domain-rule' | 'default';
  /** MTA-STS mode when a policy applied. */
  mode: string | null;
  /** MTA-STS policy id when a policy applied. */
  id: string | null;
  /** The level that was enforced: encrypt, verify or portal. */
  level: string;
  /** The DANE state of the MX used (only when DANE is on; null when no MX was used). */
  dane?: string | null;
}

/** What one MX offered, kept for every candidate tried, so a diversion shows why each MX failed. */
export interface MxAttemptEvidence {
  mx: string;
  ip: string | null;
  at: number;
  class: EvidenceClass;
  /** Short code: starttls-not-offered, tls-handshake-failed, certificate-untrusted, connect-failed, ... */
  code: string;
  reason: string;
  starttls: boolean | null;
  tls: TlsEvidence | null;
  certificate: CertificateEvidence | null;
  reply: string | null;
  /** DANE at this attempt (only when DANE is on). */
  dane?: DaneEvidence | null;
}

/** Evidence for one recipient outcome, as stored in the recipient's history and written to the audit log. */
export interface DeliveryEvidence extends Evidence {
  outcome: RecipientOutcome;
  mx: string | null;
  ip: string | null;
  tls: TlsEvidence | null;
  certificate: CertificateEvidence | null;
  policy: PolicyEvidence | null;
  reply: string | null;
  /** Every MX tried in this attempt, in order. */
  mxAttempts: MxAttemptEvidence[];
  startedAt: number;
}

/** The stable audit record shape (`sealgate audit --json`): scripts depend on these names. */
export interface AuditEntry {
  queueId: string;
  messageId: string | null;
  recipient: string;
  outcome: RecipientOutcome;
  reason: string;
  mx: string | null;
  ip: string | null;
  tls: TlsEvidence | null;
  certificate: CertificateEvidence | null;
  policy: PolicyEvidence | null;
  reply: string | null;
  at: string;
  mxAttempts: MxAttemptEvidence[];
}

export function toAuditEntry(queueId: string, messageId: string | undefined, recipient: string, evidence: Evidence): AuditEntry {
  const e = evidence as Partial<DeliveryEvidence> & Evidence;
  return {
    queueId,
    messageId: messageId ?? null,
    recipient,
    outcome: e.outcome,
    reason: e.reason,
    mx: e.mx ?? null,
    ip: e.ip ?? null,
    tls: e.tls ?? null,
    certificate: e.certificate ?? null,
    policy: e.policy ?? null,
    reply: e.reply ?? null,
    at: new Date(e.at).toISOString(),
    mxAttempts: e.mxAttempts ?? [],
  };
}
