import { createHash, X509Certificate } from 'node:crypto';

/** TLSA selector (RFC 6698 §2.1.2): 0 full certificate, 1 SubjectPublicKeyInfo. */
export type TlsaSelector = 0 | 1;
/** TLSA matching type: 0 exact, 1 SHA-256, 2 SHA-512. */
export type TlsaMatching = 0 | 1 | 2;

/** The certificate association data of a PEM certificate (the first in `pem`), lower-case hex. */
export function tlsaData(pem: string, selector: TlsaSelector, matching: TlsaMatching): string {
  const cert = new X509Certificate(pem);
  const bytes = selector === 0 ? cert.raw : cert.publicKey.export({ type: 'spki', format: 'der' });
  if (matching === 0) return bytes.toString('hex');
  return createHash(matching === 1 ? 'sha256' : 'sha512')
    .update(bytes)
    .digest('hex');
}

/** A TLSA record's rdata in zone-file form, e.g. `3 1 1 ab…`. */
export function tlsaRdata(usage: 0 | 1 | 2 | 3, selector: TlsaSelector, matching: TlsaMatching, data: string): string {
  return `${usage} ${selector} ${matching} ${data}`;
}
