import { checkServerIdentity, createSecureContext, type ConnectionOptions, type PeerCertificate, type SecureContext, type TLSSocket } from 'node:tls';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import type { Candidate, WouldFail } from './plan';
import { checkNegotiated, describeNegotiated, tlsContextOptions, type NegotiatedTls, type TlsCheck, type TlsProfile } from './tls-profile';

/**
 * One MX connection up to the point where mail could be sent: TCP connect, greeting, EHLO,
 * STARTTLS with the profile, EHLO again. The certificate is never rejected during the handshake
 * (rejectUnauthorized: false) so it can be judged and recorded; `judgeSession` then decides, per
 * the candidate's requirements, whether the session may carry mail. The delivery engine opens a
 * session, judges it and sends on `session.connection`; `sealgate check` probes and quits.
 */

export interface MxTarget {
  /** MX host name (or the route's host). */
  host: string;
  address: string;
  port: number;
  /** SNI and the name the certificate must match; null for an IP-literal next hop. */
  servername: string | null;
}

export interface MxSessionOptions {
  profile: TlsProfile;
  /** Trust store (undefined: Node's default). */
  ca?: string[];
  /** Our EHLO name. */
  ehloName: string;
  connectTimeout: number;
  greetingTimeout: number;
  socketTimeout: number;
}

export interface CertificateFacts {
  subject: string | null;
  issuer: string | null;
  validFrom: string | null;
  validTo: string | null;
  fingerprint256: string | null;
  /** Chains to a trusted root and is within its validity period. */
  trusted: boolean;
  /** Its names cover the MX host name (RFC 6125 rules, as tls.checkServerIdentity applies them). */
  nameMatch: boolean;
  /** OpenSSL's reason when not trusted (e.g. DEPTH_ZERO_SELF_SIGNED_CERT, CERT_HAS_EXPIRED). */
  error: string | null;
}

export interface MxSession {
  target: MxTarget;
  connection: SMTPConnection;
  socket: TLSSocket;
  /** Whether the plaintext EHLO advertised STARTTLS (a server may accept it unadvertised). */
  starttlsAdvertised: boolean;
  /** EHLO keywords after TLS. */
  ehlo: string[];
  negotiated: NegotiatedTls;
  profileCheck: TlsCheck;
  certificate: CertificateFacts;
}

/** How an MX attempt ended, in the delivery engine's terms (issue 4). */
export type AttemptClass = 'non-compliant' | 'transient' | 'permanent';

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
  ) {
    super(message);
  }
}

type NodemailerError = Error & { code?: string; originalCode?: string; responseCode?: number; response?: string; command?: string };

/** Internals of nodemailer's SMTPConnection used here; none has a public accessor (toolchain.md §3). */
interface ConnectionInternals {
  _socket: unknown;
  _ehloLines?: string[];
  _actionEHLO: (str: string) => void;
  upgrading?: boolean;
}

/**
 * One SecureContext per (profile, trust store): building one parses every root CA (~10 ms), which
 * tls.connect would otherwise repeat for each MX connection. Settings are those of the profile.
 */
const secureContexts = new WeakMap<TlsProfile, Map<string[] | undefined, SecureContext>>();

function outboundSecureContext(profile: TlsProfile, ca: string[] | undefined): SecureContext {
  let byCa = secureContexts.get(profile);
  if (!byCa) secureContexts.set(profile, (byCa = new Map()));
  let context = byCa.get(ca);
  if (!context) byCa.set(ca, (context = createSecureContext({ ...tlsContextOptions(profile), ...(ca ? { ca } : {}) })));
  return context;
}

/** TLS options for an outbound session from the profile: SNI, trust store, no rejection during the handshake. */
export function sessionTlsOptions(profile: TlsProfile, servername: string | null, ca: string[] | undefined): ConnectionOptions {
  return {
    ...tlsContextOptions(profile),
    secureContext: outboundSecureContext(profile, ca),
    ...(servername ? { servername } : {}),
    rejectUnauthorized: false,
    // `authorized` then reflects the chain only; the name is judged separately (nameMatch).
    checkServerIdentity: () => undefined,
  };
}

export function openMxSession(target: MxTarget, options: MxSessionOptions, tlsOverride?: ConnectionOptions): Promise<MxSession> {
  return new Promise((resolve, reject) => {
    const connection = new SMTPConnection({
      host: target.address,
      port: target.port,
      name: options.ehloName,
      requireTLS: true,
      ...(target.servername ? { servername: target.servername } : {}),
      tls: tlsOverride ?? sessionTlsOptions(options.profile, target.servername, options.ca),
      connectionTimeout: options.connectTimeout,
      greetingTimeout: options.greetingTimeout,
      socketTimeout: options.socketTimeout,
      logger: false,
    });
    const internals = connection as unknown as ConnectionInternals;
    let plaintextEhlo: string | null = null;
    const originalEhlo = internals._actionEHLO;
    internals._actionEHLO = function (this: unknown, str: string) {
      plaintextEhlo ??= str;
      return originalEhlo.call(this, str);
    };
    const advertised = () => (plaintextEhlo === null ? null : /[ -]STARTTLS\b/im.test(plaintextEhlo));
    let settled = false;

    connection.on('error', (err: NodemailerError) => {
      if (settled) return;
      settled = true;
      const { classification, code, reason } = classifySessionError(err, advertised(), internals.upgrading === true);
      reject(new MxSessionError(reason, classification, code, advertised(), err.response ?? null));
    });
    connection.connect(() => {
      if (settled) return;
      settled = true;
      const socket = internals._socket as TLSSocket;
      const negotiated = describeNegotiated(socket);
      resolve({
        target,
        connection,
        socket,
        starttlsAdvertised: advertised() ?? false,
        ehlo: internals._ehloLines ?? [],
        negotiated,
        profileCheck: checkNegotiated(socket, options.profile),
        certificate: describeCertificate(socket, target),
      });
    });
  });
}

/** Sends QUIT and waits (bounded) for the connection to end. */
export function closeMxSession(session: Pick<MxSession, 'connection'>, waitMs = 5_000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      session.connection.close();
      resolve();
    }, waitMs);
    session.connection.once('end', () => {
      clearTimeout(timer);
      resolve();
    });
    session.connection.quit();
  });
}

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

function formatName(name: PeerCertificate['subject'] | undefined): string | null {
  if (!name || typeof name !== 'object') return null;
  const parts = Object.entries(name).map(([key, value]) => `${key}=${Array.isArray(value) ? value.join('+') : String(value)}`);
  return parts.length > 0 ? parts.join(', ') : null;
}

export function describeCertificate(socket: TLSSocket, target: MxTarget): CertificateFacts {
  const cert = socket.getPeerCertificate();
  if (!cert || Object.keys(cert).length === 0) {
    return { subject: null, issuer: null, validFrom: null, validTo: null, fingerprint256: null, trusted: false, nameMatch: false, error: 'no certificate' };
  }
  const name = target.servername ?? target.address;
  const authError = socket.authorizationError as unknown as Error | string | null | undefined;
  return {
    subject: formatName(cert.subject),
    issuer: formatName(cert.issuer),
    validFrom: toIso(cert.valid_from),
    validTo: toIso(cert.valid_to),
    fingerprint256: cert.fingerprint256 ?? null,
    trusted: socket.authorized,
    nameMatch: checkServerIdentity(name, cert) === undefined,
    error: socket.authorized ? null : authError ? String(authError instanceof Error ? ((authError as NodeJS.ErrnoException).code ?? authError.message) : authError) : 'not trusted',
  };
}

function toIso(value: string | undefined): string | null {
  if (!value) return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? value : date.toISOString();
}

/** Whether an established session may carry mail for a candidate, and what testing mode would have refused. */
export interface SessionJudgement {
  compliant: boolean;
  classification: AttemptClass | null;
  code: string;
  reason: string;
  wouldFail: WouldFail[];
}

export function judgeSession(session: Pick<MxSession, 'profileCheck' | 'certificate' | 'target'>, candidate: Pick<Candidate, 'requireValidCert' | 'stsTesting'>): SessionJudgement {
  const wouldFail: WouldFail[] = [];
  const { certificate, profileCheck, target } = session;
  const certProblem = !certificate.trusted
    ? { code: 'certificate-untrusted', detail: `certificate not trusted (${certificate.error ?? 'unknown reason'})` }
    : !certificate.nameMatch
      ? { code: 'certificate-name-mismatch', detail: `certificate does not match ${target.servername ?? target.address}` }
      : null;
  if (candidate.stsTesting && certProblem) wouldFail.push({ host: target.host, reason: certProblem.code, detail: certProblem.detail });

  if (!profileCheck.compliant) {
    return { compliant: false, classification: 'non-compliant', code: 'tls-profile', reason: `negotiated TLS outside the profile: ${profileCheck.problems.join('; ')}`, wouldFail };
  }
  if (candidate.requireValidCert && certProblem) {
    return { compliant: false, classification: 'non-compliant', code: certProblem.code, reason: certProblem.detail, wouldFail };
  }
  const certNote = certProblem ? ` (certificate recorded, not required: ${certProblem.detail})` : '';
  return { compliant: true, classification: null, code: 'compliant', reason: `${session.profileCheck.negotiated.protocol} ${session.profileCheck.negotiated.cipher}${certNote}`, wouldFail };
}

/**
 * What a non-compliant server does offer: one more handshake with a permissive client (any
 * version, any suite), for evidence only. Never used to carry mail.
 */
export async function diagnoseHandshake(target: MxTarget, options: MxSessionOptions): Promise<NegotiatedTls | null> {
  const permissive: ConnectionOptions = {
    minVersion: 'TLSv1',
    ciphers: 'ALL:@SECLEVEL=0',
    ...(target.servername ? { servername: target.servername } : {}),
    rejectUnauthorized: false,
    checkServerIdentity: () => undefined,
  };
  try {
    const session = await openMxSession(target, options, permissive);
    await closeMxSession(session);
    return session.negotiated;
  } catch {
    return null;
  }
}

/** One address tried for a candidate. */
export interface AddressAttempt {
  address: string;
  /** null when a session was established. */
  error: MxSessionError | null;
  judgement: SessionJudgement | null;
}

export type CandidateConnection =
  /** A compliant session, still open: send on `session.connection`, close with closeMxSession. */
  | { ok: true; session: MxSession; judgement: SessionJudgement; attempts: AddressAttempt[] }
  /** No compliant session. `session` is the closed non-compliant one, when the handshake got that far (evidence). */
  | { ok: false; classification: AttemptClass; code: string; reason: string; attempts: AddressAttempt[]; session: MxSession | null; starttlsAdvertised: boolean | null };

/**
 * Connects to a candidate MX: its addresses in order until one answers. A transient failure moves
 * on to the next address; a non-compliant server does not (its other addresses are the same
 * server). A compliant session is returned open; anything else is closed.
 */
export async function connectCandidate(
  candidate: Pick<Candidate, 'host' | 'addresses' | 'port' | 'servername' | 'requireValidCert' | 'stsTesting'>,
  options: MxSessionOptions,
): Promise<CandidateConnection> {
  const attempts: AddressAttempt[] = [];
  let last: Extract<CandidateConnection, { ok: false }> = {
    ok: false,
    classification: 'transient',
    code: 'no-address',
    reason: `${candidate.host} has no address to try`,
    attempts,
    session: null,
    starttlsAdvertised: null,
  };
  for (const address of candidate.addresses) {
    const target: MxTarget = { host: candidate.host, address, port: candidate.port, servername: candidate.servername };
    let session: MxSession;
    try {
      session = await openMxSession(target, options);
    } catch (err) {
      if (!(err instanceof MxSessionError)) throw err;
      attempts.push({ address, error: err, judgement: null });
      last = { ...last, classification: err.classification, code: err.code, reason: err.message, starttlsAdvertised: err.starttlsAdvertised };
      if (err.classification === 'transient') continue;
      return last;
    }
    const judgement = judgeSession(session, candidate);
    attempts.push({ address, error: null, judgement });
    if (judgement.compliant) return { ok: true, session, judgement, attempts };
    await closeMxSession(session);
    return { ...last, classification: judgement.classification ?? 'non-compliant', code: judgement.code, reason: judgement.reason, session, starttlsAdvertised: session.starttlsAdvertised };
  }
  return last;
}
