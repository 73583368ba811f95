import { checkServerIdentity, type PeerCertificate, type TLSSocket } from 'node:tls';
import type { MxTarget } from './target';

/** What the MX's certificate is, and whether it is trusted and names the host: recorded for every session. */
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
