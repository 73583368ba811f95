import { createSecureContext, type ConnectionOptions, type SecureContext, type TLSSocket } from 'node:tls';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import type { MxSessionOptions } from '../policy/session-options';
import { checkNegotiated, describeNegotiated, tlsContextOptions, type NegotiatedTls, type TlsCheck, type TlsProfile } from '../policy/tls-profile';
import { describeCertificate, describeChain, peerChainDer, type CertificateFacts, type ChainCertificate } from './certificate';
import type { MxTarget } from './target';

export type { MxTarget } from './target';
import { classifySessionError, MxSessionError, type NodemailerError } from './classify';

export type { MxSessionOptions } from '../policy/session-options';

/**
 * One MX connection up to the point where mail could be sent: TCP connect, greeting, EHLO,
 * STARTTLS with the profile, EHLO again. The certificate is never rejected during the handshake
 * (rejectUnauthorized: false) so it can be judged and recorded; `judgeSession` then decides, per
 * the candidate's requirements, whether the session may carry mail. The delivery engine opens a
 * session, judges it and sends on `session.connection`; `sealgate check` probes and quits.
 */

export interface MxSession {
  target: MxTarget;
  connection: SMTPConnection;
  socket: TLSSocket;
  /** Whether the plaintext EHLO advertised STARTTLS (a server may accept it unadvertised). */
  starttlsAdvertised: boolean;
  /** EHLO keywords after TLS. */
  ehlo: string[];
  /** EHLO keywords before STARTTLS, as the server advertised them in plaintext. */
  ehloBeforeTls: string[];
  /** The certificate chain the server sent, leaf first: only when the session was opened to inspect it (`sealgate check --mx`). */
  chain?: ChainCertificate[];
  /** The certificate chain the server sent as DER, leaf first: only when DANE applies to the host (the judge matches TLSA records against it). */
  peerChainDer?: Buffer[];
  negotiated: NegotiatedTls;
  profileCheck: TlsCheck;
  certificate: CertificateFacts;
}

/**
 * Internals of nodemailer's SMTPConnection used here; none has a public accessor.
 * test/smtp-client/nodemailer-internals.test.ts pins them to the installed nodemailer version.
 */
export interface ConnectionInternals {
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
  if (!byCa) secureContexts.set(profile, (byCa = new Map<string[] | undefined, SecureContext>()));
  let context = byCa.get(ca);
  if (!context) byCa.set(ca, (context = createSecureContext({ ...tlsContextOptions(profile), ...(ca ? { ca } : {}) })));
  return context;
}

/** TLS options for an outbound session from the profile: SNI, trust store, no rejection during the handshake. */
/**
 * Keeps the first (plaintext) EHLO reply nodemailer reads, which is the only place that says whether the server
 * offered STARTTLS: nodemailer exposes no accessor for it. Returns "was STARTTLS offered?" (null before EHLO).
 */
function watchStarttlsOffer(internals: ConnectionInternals): { advertised: () => boolean | null; keywords: () => string[] | null; localAddress: () => string | null } {
  let plaintextEhlo: string | null = null;
  // Our end of the connection, read at the first EHLO while the plain socket is surely open (TLS-RPT's sending-mta-ip).
  let localAddress: string | null = null;
  const originalEhlo = internals._actionEHLO;
  internals._actionEHLO = function (this: unknown, str: string) {
    plaintextEhlo ??= str;
    localAddress ??= (internals._socket as { localAddress?: string } | undefined)?.localAddress ?? null;
    return originalEhlo.call(this, str);
  };
  return {
    advertised: () => (plaintextEhlo === null ? null : /[ -]STARTTLS\b/im.test(plaintextEhlo)),
    keywords: () => (plaintextEhlo === null ? null : ehloKeywords(plaintextEhlo)),
    localAddress: () => localAddress,
  };
}

/** The keywords of an EHLO reply (the greeting line dropped), as nodemailer lists them after TLS. */
export function ehloKeywords(reply: string): string[] {
  return reply
    .split(/\r?\n/)
    .map((line) => line.replace(/^\d+[ -]/, '').trim())
    .filter((line) => line)
    .slice(1);
}

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

/**
 * Opens a session; `inspect` also keeps the certificate chain (read while the socket is open), for `sealgate check --mx`;
 * `keepChainDer` keeps the raw chain for a DANE check.
 */
export async function openMxSession(target: MxTarget, options: MxSessionOptions, tlsOverride?: ConnectionOptions, inspect = false, keepChainDer = false): Promise<MxSession> {
  const { connection, internals, starttlsAdvertised, ehloBeforeTls } = await dialMx(target, options, {
    requireTLS: true,
    tls: tlsOverride ?? sessionTlsOptions(options.profile, target.servername, options.ca),
  });
  const socket = internals._socket as TLSSocket;
  return {
    target,
    connection,
    socket,
    starttlsAdvertised,
    ehlo: internals._ehloLines ?? [],
    ehloBeforeTls,
    ...(inspect ? { chain: describeChain(socket) } : {}),
    ...(keepChainDer ? { peerChainDer: peerChainDer(socket) } : {}),
    negotiated: describeNegotiated(socket),
    profileCheck: checkNegotiated(socket, options.profile),
    certificate: describeCertificate(socket, target),
  };
}

/**
 * Connects, reads the greeting and EHLO and, as `requireTLS` says, upgrades with STARTTLS (required: no session
 * without it; optional: only when offered). Resolves once the session is ready for MAIL; any failure on the way
 * rejects with a classified MxSessionError. The callers judge what was negotiated.
 */
export function dialMx(
  target: MxTarget,
  options: MxSessionOptions,
  settings: { requireTLS: boolean; tls: ConnectionOptions },
): Promise<{ connection: SMTPConnection; internals: ConnectionInternals; starttlsAdvertised: boolean; ehloBeforeTls: string[] }> {
  return new Promise((resolve, reject) => {
    const connection = new SMTPConnection({
      host: target.address,
      port: target.port,
      name: options.ehloName,
      requireTLS: settings.requireTLS,
      ...(settings.requireTLS ? {} : { ignoreTLS: false, opportunisticTLS: false }),
      ...(target.servername ? { servername: target.servername } : {}),
      tls: settings.tls,
      connectionTimeout: options.connectTimeout,
      greetingTimeout: options.greetingTimeout,
      socketTimeout: options.socketTimeout,
      logger: false,
    });
    const internals = connection as unknown as ConnectionInternals;
    const { advertised, keywords, localAddress } = watchStarttlsOffer(internals);
    let settled = false;

    connection.on('error', (err: NodemailerError) => {
      if (settled) return;
      settled = true;
      const { classification, code, reason } = classifySessionError(err, advertised(), internals.upgrading === true);
      reject(new MxSessionError(reason, classification, code, advertised(), err.response ?? null, keywords(), localAddress()));
    });
    connection.connect(() => {
      if (settled) return;
      settled = true;
      resolve({ connection, internals, starttlsAdvertised: advertised() ?? false, ehloBeforeTls: keywords() ?? [] });
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
