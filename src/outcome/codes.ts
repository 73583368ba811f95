/**
 * The vocabulary of delivery attempts: how one MX attempt ended (its class), what a transaction
 * returned, and the reason codes the outcome rule gives recipients. One module, so the SMTP client,
 * the delivery engine, the evidence and `sealgate check` all spell them the same way.
 */

/** How an MX attempt ended (docs/delivery.md, "How each MX attempt is classified"). */
export type AttemptClass = 'non-compliant' | 'transient' | 'permanent';

/** An attempt's class as recorded in evidence: `ok` for a transaction that completed. */
export type EvidenceClass = AttemptClass | 'ok';

/** What one recipient ended with in one attempt (the store's type). */
export type { RecipientOutcome } from '../store/types';

/** A recipient's reply within a transaction that completed: accepted (final reply) or refused at RCPT. */
export interface RecipientReply {
  outcome: 'delivered' | 'bounced' | 'deferred';
  reply: string;
}

/** One SMTP transaction (MAIL, RCPT..., DATA) on a compliant session. */
export type TransactionResult =
  | {
      kind: 'answered';
      /** Per recipient: accepted with the final reply, or refused at RCPT (4xx defer, 5xx bounce). */
      recipients: Map<string, RecipientReply>;
    }
  | {
      /** Nothing per recipient: the whole transaction failed. */
      kind: 'failed';
      classification: AttemptClass;
      code: string;
      reply: string | null;
      reason: string;
      /** The whole body went out before the failure: the MX may have kept the message (possible duplicate). */
      bodySent: boolean;
    };

/**
 * Reason codes the outcome rule and the engine give recipients themselves. Codes of single MX
 * attempts (`starttls-not-offered`, `tls-handshake-failed`, `mail-451`, ...) come from the SMTP
 * client's classification and pass through unchanged.
 */
export const REASON = {
  delivered: 'delivered',
  /** A portal notice was delivered with opportunistic TLS (or in plaintext): the TLS used is in the evidence. */
  noticeDelivered: 'notice-delivered',
  /** `sealgate check`: a compliant session was established (no mail sent). */
  compliantMx: 'compliant-mx',
  /** Every candidate failed, with different causes. */
  noCompliantMx: 'no-compliant-mx',
  /** Nothing was tried: no MX host was a candidate. */
  noMxCandidate: 'no-mx-candidate',
  /** The message requires REQUIRETLS (RFC 8689) and no MX could carry it. */
  requireTlsUnavailable: 'requiretls-unavailable',
  /** An MX host's address lookup failed temporarily (it might have been the compliant one). */
  mxAddressLookupTemporary: 'mx-address-lookup-temporary',
  /** An MX host's TLSA lookup (DANE) was bogus or failed: that host is not used, and it might have been the compliant one. */
  daneTlsaBogus: 'dane-tlsa-bogus',
  queueTimeExpired: 'queue-time-expired',
  shutdown: 'shutdown',
  internalError: 'internal-error',
  notAttempted: 'not-attempted',
} as const;

export type ReasonCode = (typeof REASON)[keyof typeof REASON];

/** The reply and status given when REQUIRETLS cannot be met (RFC 8689 §5). */
export const REQUIRETLS_REPLY = '550 5.7.30 REQUIRETLS support required';
export const REQUIRETLS_STATUS = '5.7.30';
/** RFC 3463 status for a message that stayed queued too long. */
export const EXPIRED_STATUS = '4.4.7';

/** The reason code of a recipient refused at RCPT: `rcpt-550`, `rcpt-451`, or `rcpt-no-reply`. */
export function rcptReason(reply: string | null | undefined): string {
  return `rcpt-${reply?.slice(0, 3) ?? 'no-reply'}`;
}

const ENHANCED_STATUS = /\b([245]\.\d{1,3}\.\d{1,3})\b/;

/** The RFC 3463 enhanced status in a reply, or 5.0.0 when it has none. */
export function bounceStatus(reply: string | null | undefined): string {
  return ENHANCED_STATUS.exec(reply ?? '')?.[1] ?? '5.0.0';
}
