import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** Signs a finished message; returns the message with its DKIM-Signature header in front. */
export interface DkimSigner {
  readonly domain: string;
  readonly selector: string;
  readonly algorithm: 'rsa-sha256' | 'ed25519-sha256';
  sign(message: Buffer): Promise<Buffer>;
}

export class DkimKeyError extends Error {
  override name = 'DkimKeyError';
}

/** Where a signing key is configured: the signing domain, the selector and the PEM file of the private key. */
export interface DkimKeyConfig {
  domain: string;
  selector: string;
  keyFile: string;
}

/**
 * Reads a DKIM key once (PEM, RSA or Ed25519; the key type picks the algorithm). Null when no DKIM key
 * is configured. Throws DkimKeyError naming the setting (`setting`, e.g. portal.dkim) and the file when
 * the key cannot be used, so the relay refuses to start rather than send unsigned mail it was told to sign.
 * Signatures are relaxed/relaxed over the whole body (no l= tag).
 */
export function loadDkimSigner(dkim: DkimKeyConfig | null, setting = 'portal.dkim'): DkimSigner | null {
  if (!dkim) return null;
  let pem: string;
  try {
    pem = readFileSync(dkim.keyFile, 'utf8');
  } catch (err) {
    throw new DkimKeyError(`${setting}.keyFile ${dkim.keyFile}: cannot read the DKIM private key (${(err as Error).message})`);
  }
  let type: string | undefined;
  try {
    type = createPrivateKey(pem).asymmetricKeyType;
  } catch (err) {
    throw new DkimKeyError(`${setting}.keyFile ${dkim.keyFile}: not a PEM private key (${(err as Error).message})`);
  }
  const algorithm = type === 'rsa' ? 'rsa-sha256' : type === 'ed25519' ? 'ed25519-sha256' : null;
  if (!algorithm) throw new DkimKeyError(`${setting}.keyFile ${dkim.keyFile}: a ${type ?? 'unknown'} key; DKIM needs RSA or Ed25519`);
  const { domain, selector } = dkim;
  return {
    domain,
    selector,
    algorithm,
    async sign(message: Buffer): Promise<Buffer> {
      // Loaded on demand: mailauth and its libraries (joi, undici, ASN.1) cost ~35 MB of RSS, and most relays sign nothing.
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- a lazy require keeps mailauth unloaded until the first signature
      const { dkimSign } = require('mailauth') as typeof import('mailauth');
      const result = await dkimSign(message, {
        canonicalization: 'relaxed/relaxed',
        algorithm,
        signingDomain: domain,
        selector,
        privateKey: pem,
        signatureData: [{ signingDomain: domain, selector, privateKey: pem, algorithm, canonicalization: 'relaxed/relaxed' }],
      });
      if (result.errors.length > 0 || !result.signatures) {
        throw new DkimKeyError(`DKIM signing failed: ${result.errors.map((e) => e.message).join('; ') || 'no signature produced'}`);
      }
      return Buffer.concat([Buffer.from(result.signatures), message]);
    },
  };
}
