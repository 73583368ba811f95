import type { TransactionResult } from '../outcome';
import type { Candidate } from '../policy/plan';
import { connectCandidate, type CandidateConnection } from './connect';
import { connectOpportunistic, type OpportunisticConnection, type OpportunisticSession } from './opportunistic';
import { closeMxSession, type MxSession, type MxSessionOptions } from './session';
import { resetSession, sendTransaction, type TransactionInput } from './transaction';

/**
 * Everything the delivery engine does on the wire, as one replaceable object: the real SMTP client
 * by default, a fake in unit tests.
 */
export interface MxConnector {
  /** A compliant, judged session with a candidate, or how trying failed (connectCandidate). */
  connect(
    candidate: Pick<Candidate, 'host' | 'addresses' | 'port' | 'servername' | 'requireValidCert' | 'stsTesting'> & Partial<Pick<Candidate, 'dane'>>,
    options: MxSessionOptions,
  ): Promise<CandidateConnection>;
  /** One transaction; an abort closes the connection (the transaction then fails). Never throws. */
  send(session: MxSession, input: TransactionInput, signal: AbortSignal): Promise<TransactionResult>;
  /** RSET for the next message; false when the connection cannot be reused. */
  reset(session: MxSession): Promise<boolean>;
  /** QUIT, bounded by waitMs. */
  close(session: MxSession, waitMs?: number): Promise<void>;
  /**
   * Portal notices only: a session with whatever TLS the MX offers, or plaintext (connectOpportunistic).
   * The engine calls it for messages marked `params.notice` and for nothing else.
   */
  connectOpportunistic(candidate: Pick<Candidate, 'host' | 'addresses' | 'port' | 'servername'>, options: MxSessionOptions): Promise<OpportunisticConnection>;
  /** One transaction on an opportunistic session; an abort closes the connection. Never throws. */
  sendOpportunistic(session: OpportunisticSession, input: TransactionInput, signal: AbortSignal): Promise<TransactionResult>;
  /** QUIT an opportunistic session, bounded by waitMs. */
  closeOpportunistic(session: OpportunisticSession, waitMs?: number): Promise<void>;
}

async function sendAbortable(session: Pick<MxSession, 'connection'>, input: TransactionInput, signal: AbortSignal): Promise<TransactionResult> {
  const abort = () => session.connection.close();
  if (signal.aborted) abort();
  else signal.addEventListener('abort', abort, { once: true });
  try {
    return await sendTransaction(session, input);
  } finally {
    signal.removeEventListener('abort', abort);
  }
}

export const smtpConnector: MxConnector = {
  connect: connectCandidate,
  send: sendAbortable,
  reset: resetSession,
  close: closeMxSession,
  connectOpportunistic: (candidate, options) => connectOpportunistic(candidate, options),
  sendOpportunistic: sendAbortable,
  closeOpportunistic: closeMxSession,
};
