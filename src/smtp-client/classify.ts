import type { AttemptClass } from '../outcome';

/**
 * Every way an MX session can fail before mail could be sent, classified once: non-compliant
 * (no compliant TLS with this server: try the next MX, never plaintext), transient (try again
 * later), permanent.
 */

export class MxSessionError extends Error {
  override name = 'MxSessionError';
  constructor(
    message: string,
    readonly classification: AttemptClass,
    /** Short code: connect-failed, starttls-not-offered, tls-handshake-failed, tls-handshake-interrupted, ... */
    readonly code: string,
    /** STARTTLS advertised in the plaintext EHLO (null: the session never got that far). */
    readonly starttlsAdvertised: boolean | null,
    /** The server reply that ended it, if any. */
    readonly reply: string | null,
    /** The plaintext EHLO keywords, when the session got that far (evidence for `sealgate check --mx`). */
    readonly ehlo: string[] | null = null,
    /** Our end of the connection, when it got that far (TLS-RPT's sending-mta-ip). */
    readonly localAddress: string | null = null,
  ) {
    super(message);
  }
}

export type NodemailerError = Error & { code?: string; originalCode?: string; responseCode?: number; response?: string; command?: string };

export function classifySessionError(err: NodemailerError, starttlsAdvertised: boolean | null, duringHandshake: boolean): { classification: AttemptClass; code: string; reason: string } {
  const reply = err.response ? err.response.trim() : null;
  const replyCode = err.responseCode ?? 0;
  const low = `${err.originalCode ?? ''} ${err.code ?? ''} ${err.message}`;

  if (err.command === 'STARTTLS' && reply) {
    if (starttlsAdvertised === false) return { classification: 'non-compliant', code: 'starttls-not-offered', reason: `STARTTLS not offered (server answered ${reply})` };
    if (replyCode >= 400 && replyCode < 500) return { classification: 'transient', code: 'starttls-temporary', reason: `STARTTLS refused temporarily: ${reply}` };
    return { classification: 'non-compliant', code: 'starttls-refused', reason: `STARTTLS refused: ${reply}` };
  }
  if (starttlsAdvertised === false && !duringHandshake && /STARTTLS/i.test(err.message)) {
    return { classification: 'non-compliant', code: 'starttls-not-offered', reason: 'STARTTLS not offered' };
  }
  if (duringHandshake) {
    if (/TIMEOUT|ETIMEDOUT|ECONNRESET|EPIPE|socket hang up|closed unexpectedly|ECONNABORTED/i.test(low)) {
      return { classification: 'transient', code: 'tls-handshake-interrupted', reason: `TLS handshake interrupted: ${err.message}` };
    }
    return { classification: 'non-compliant', code: 'tls-handshake-failed', reason: `no TLS session within the profile: ${describeSslError(err)}` };
  }
  if (err.command === 'EHLO' && replyCode >= 500) return { classification: 'non-compliant', code: 'ehlo-refused', reason: `EHLO refused, so no STARTTLS: ${reply}` };
  if (reply) return { classification: 'transient', code: 'smtp-refused', reason: `server answered ${reply}` };
  return { classification: 'transient', code: 'connect-failed', reason: `connection failed: ${err.originalCode ?? err.code ?? ''} ${err.message}`.replace(/\s+/g, ' ') };
}

function describeSslError(err: NodemailerError): string {
  const code = err.originalCode ?? '';
  if (/PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL|WRONG_VERSION/.test(code)) return `the server offers no TLS version the profile allows (${code})`;
  if (/HANDSHAKE_FAILURE|NO_SHARED_CIPHER|NO_CIPHERS/.test(code)) return `the server offers no cipher suite or group the profile allows (${code})`;
  return `${code ? `${code}: ` : ''}${err.message}`;
}
