import type { Socket } from 'node:net';
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import type SMTPConnection from 'nodemailer/lib/smtp-connection';
import type { AttemptClass } from '../outcome';
import type { Candidate } from '../policy/plan';
import type { MxSessionOptions } from '../policy/session-options';
import { describeNegotiated, type NegotiatedTls } from '../policy/tls-profile';
import { describeCertificate, type CertificateFacts } from './certificate';
import { MxSessionError } from './classify';
import { dialMx, sessionTlsOptions } from './session';
import type { MxTarget } from './target';

/**
 * Opportunistic SMTP sessions, for portal notices ONLY (the delivery engine opens them for messages
 * marked `params.notice`, never for anything else). A notice goes to a domain that already failed
 * the TLS policy, and carries no message content, so it may travel with whatever TLS the MX can do,
 * or none. Nothing here is used by `openMxSession` / `connectCandidate`: the compliant path has
 * no way to end up in plaintext or below the profile.
 */

/** How an opportunistic session is protected. */
export type OpportunisticProtection = 'profile' | 'permissive' | 'plaintext';

export interface OpportunisticSession {
  target: MxTarget;
  connection: SMTPConnection;
  /** Whether the plaintext EHLO advertised STARTTLS. */
  starttlsAdvertised: boolean;
  protection: OpportunisticProtection;
  /** What was negotiated; null in plaintext. */
  negotiated: NegotiatedTls | null;
  /** The MX certificate as recorded (never required); null in plaintext. */
  certificate: CertificateFacts | null;
}

/** The permissive client: TLS 1.0 and up, any suite, no certificate check. */
export function permissiveTlsOptions(servername: string | null): ConnectionOptions {
  return {
    minVersion: 'TLSv1',
    ciphers: 'ALL:@SECLEVEL=0',
    ...(servername ? { servername } : {}),
    rejectUnauthorized: false,
    checkServerIdentity: () => undefined,
  };
}

/**
 * One opportunistic session: connect, EHLO, STARTTLS when offered (with the relay's profile, or
 * with the permissive client when `tls` says so), else stay in plaintext. Throws MxSessionError.
 */
export async function openOpportunisticSession(target: MxTarget, options: MxSessionOptions, tls: 'profile' | 'permissive'): Promise<OpportunisticSession> {
  // STARTTLS when advertised; a server that does not advertise it gets plaintext.
  const tlsOptions = tls === 'profile' ? sessionTlsOptions(options.profile, target.servername, options.ca) : permissiveTlsOptions(target.servername);
  const { connection, internals, starttlsAdvertised } = await dialMx(target, options, { requireTLS: false, tls: tlsOptions });
  const socket = internals._socket as Socket | TLSSocket;
  const encrypted = (socket as TLSSocket).encrypted === true;
  return {
    target,
    connection,
    starttlsAdvertised,
    protection: encrypted ? tls : 'plaintext',
    negotiated: encrypted ? describeNegotiated(socket as TLSSocket) : null,
    certificate: encrypted ? describeCertificate(socket as TLSSocket, target) : null,
  };
}

/** One address tried opportunistically: the error that ended a try (null for the session returned). */
export interface OpportunisticAttempt {
  address: string;
  protection: 'profile' | 'permissive';
  error: MxSessionError | null;
}

export type OpportunisticConnection =
  { ok: true; session: OpportunisticSession; attempts: OpportunisticAttempt[] } | { ok: false; classification: AttemptClass; code: string; reason: string; attempts: OpportunisticAttempt[] };

/**
 * Connects to a candidate for a notice: its addresses in order until one answers. Per address,
 * STARTTLS with the relay's profile first; if that handshake fails, the same address again with
 * the permissive client; if STARTTLS is not offered, plaintext. A transient failure moves on to
 * the next address.
 */
export async function connectOpportunistic(
  candidate: Pick<Candidate, 'host' | 'addresses' | 'port' | 'servername'>,
  options: MxSessionOptions,
  /** The session opener (tests bring a fake one to drive the retries without sockets). */
  open: typeof openOpportunisticSession = openOpportunisticSession,
): Promise<OpportunisticConnection> {
  const attempts: OpportunisticAttempt[] = [];
  let last: Extract<OpportunisticConnection, { ok: false }> = { ok: false, classification: 'transient', code: 'no-address', reason: `${candidate.host} has no address to try`, attempts };
  for (const address of candidate.addresses) {
    const target: MxTarget = { host: candidate.host, address, port: candidate.port, servername: candidate.servername };
    for (const protection of ['profile', 'permissive'] as const) {
      try {
        const session = await open(target, options, protection);
        attempts.push({ address, protection, error: null });
        return { ok: true, session, attempts };
      } catch (err) {
        if (!(err instanceof MxSessionError)) throw err;
        attempts.push({ address, protection, error: err });
        last = { ok: false, classification: err.classification, code: err.code, reason: err.message, attempts };
        // Only a handshake the profile could not complete is worth a permissive retry.
        if (protection === 'profile' && (err.code === 'tls-handshake-failed' || err.code === 'tls-handshake-interrupted')) continue;
        break;
      }
    }
    if (last.classification !== 'transient') return last;
  }
  return last;
}
