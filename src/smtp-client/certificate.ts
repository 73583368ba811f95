import { createHash, X509Certificate } from 'node:crypto';
import { checkServerIdentity, type DetailedPeerCertificate, type PeerCertificate, type TLSSocket } from 'node:tls';
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

/** One certificate of the chain a server sent, as `sealgate check --mx` shows it (posttls-finger style). */
export interface ChainCertificate {
  subject: string | null;
  issuer: string | null;
  /** subjectAltName entries as OpenSSL prints them (`DNS:mx1.example.org`, `IP Address:192.0.2.1`). */
  san: string[];
  /** rsa, ec, ed25519, ... */
  keyType: string | null;
  /** RSA modulus or EC field size in bits. */
  keyBits: number | null;
  /** EC curve (prime256v1, secp384r1, ...). */
  curve: string | null;
  validFrom: string | null;
  validTo: string | null;
  /** SHA-256 of the DER certificate, colon-separated hex (as openssl x509 -fingerprint -sha256). */
  sha256: string;
  /** SHA-256 of the DER SubjectPublicKeyInfo (the DANE 3 1 1 / pin value), colon-separated hex. */
  spkiSha256: string;
}

/** The chain as the server sent it (leaf first), each certificate once; empty without a certificate. */
export function describeChain(socket: TLSSocket): ChainCertificate[] {
  const chain: ChainCertificate[] = [];
  const seen = new Set<string>();
  let cert: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  // A self-issued root points at itself; the bound keeps a cyclic chain from looping.
  while (cert?.raw && chain.length < 16) {
    const described = describeOne(cert);
    if (seen.has(described.sha256)) break;
    seen.add(described.sha256);
    chain.push(described);
    cert = cert.issuerCertificate;
  }
  return chain;
}

/** The chain as the server sent it (leaf first) in DER, each certificate once; empty without a certificate. */
export function peerChainDer(socket: TLSSocket): Buffer[] {
  const chain: Buffer[] = [];
  let cert: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  // A self-issued root points at itself; the bound keeps a cyclic chain from looping.
  while (cert?.raw && chain.length < 16) {
    const raw = cert.raw;
    if (chain.some((seen) => seen.equals(raw))) break;
    chain.push(raw);
    cert = cert.issuerCertificate;
  }
  return chain;
}

function describeOne(cert: DetailedPeerCertificate): ChainCertificate {
  const x509 = new X509Certificate(cert.raw);
  const key = x509.publicKey;
  const details = key.asymmetricKeyDetails ?? {};
  const curve = details.namedCurve ?? null;
  const spki = key.export({ type: 'spki', format: 'der' });
  return {
    subject: formatName(cert.subject),
    issuer: formatName(cert.issuer),
    san: x509.subjectAltName ? x509.subjectAltName.split(/,\s*/).filter(Boolean) : [],
    keyType: key.asymmetricKeyType ?? null,
    keyBits: details.modulusLength ?? (curve ? curveBits(curve) : null),
    curve,
    validFrom: toIso(cert.valid_from),
    validTo: toIso(cert.valid_to),
    sha256: x509.fingerprint256,
    spkiSha256: colonHex(createHash('sha256').update(spki).digest()),
  };
}

const CURVE_BITS: Record<string, number> = { prime256v1: 256, secp384r1: 384, secp521r1: 521, secp256k1: 256 };

function curveBits(curve: string): number | null {
  return CURVE_BITS[curve] ?? null;
}

function colonHex(digest: Buffer): string {
  return (digest.toString('hex').toUpperCase().match(/../g) ?? []).join(':');
}
