import type { TransactionResult } from '../outcome';
import type { Candidate } from '../policy/plan';
import { connectCandidate, type CandidateConnection } from './connect';
import { closeMxSession, type MxSession, type MxSessionOptions } from './session';
import { resetSession, sendTransaction, type TransactionInput } from './transaction';

/**
 * Everything the delivery engine does on the wire, as one replaceable object: the real SMTP client
 * by default, a fake in unit tests.
 */
export interface MxConnector {
  /** A compliant, judged session with a candidate, or how trying failed (connectCandidate). */
  connect(candidate: Pick<Candidate, 'host' | 'addresses' | 'port' | 'servername' | 'requireValidCert' | 'stsTesting'>, options: MxSessionOptions): Promise<CandidateConnection>;
  /** One transaction; an abort closes the connection (the transaction then fails). Never throws. */
  send(session: MxSession, input: TransactionInput, signal: AbortSignal): Promise<TransactionResult>;
  /** RSET for the next message; false when the connection cannot be reused. */
  reset(session: MxSession): Promise<boolean>;
  /** QUIT, bounded by waitMs. */
  close(session: MxSession, waitMs?: number): Promise<void>;
}

export const smtpConnector: MxConnector = {
  connect: connectCandidate,
  async send(session, input, signal) {
    const abort = () => session.connection.close();
    if (signal.aborted) abort();
    else signal.addEventListener('abort', abort, { once: true });
    try {
      return await sendTransaction(session, input);
    } finally {
      signal.removeEventListener('abort', abort);
    }
  },
  reset: resetSession,
  close: closeMxSession,
};
