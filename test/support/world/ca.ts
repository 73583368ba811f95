import { X509Certificate } from 'node:crypto';
import { generate } from 'selfsigned';

/**
 * Test certificate authority and leaf certificates for the test world.
 *
 * selfsigned signs with the CA key using the *leaf's* key type, so EC leaves need an EC CA
 * and RSA leaves an RSA CA: the test CA is therefore two roots, and `caPem` holds both.
 * Key pairs are generated once per process and reused for every leaf (signing is cheap,
 * key generation is not), so a world with many hosts starts fast.
 */

export interface CertPair {
  key: string;
  cert: string;
}

/** What a leaf certificate is meant to exercise. */
export type LeafKind =
  | 'valid' // EC P-256, signed by the test CA, names as given
  | 'ec' // same as 'valid' (explicit EC P-256)
  | 'rsa' // RSA 2048, signed by the test CA
  | 'wrong-name' // signed by the test CA, but for `wrong-name.invalid` only
  | 'expired' // signed by the test CA, names as given, expired yesterday
  | 'self-signed' // names as given, but not signed by the test CA
  | 'weak-rsa'; // RSA 1024, signed by the test CA

export interface TestCa {
  /** PEM of every root of the test CA (EC and RSA roots, concatenated). Trust this. */
  caPem: string;
  /** A leaf for `names` (first name is the CN; all are DNS SANs). Cached per kind+names. */
  leaf(kind: LeafKind, names: string | string[]): Promise<CertPair>;
  /** PEM of the root that signs leaves of this kind (EC or RSA root); null for `self-signed`. A DANE-TA record names it. */
  rootOf(kind: LeafKind): string | null;
}

/** The name used by `wrong-name` leaves. */
export const WRONG_NAME = 'wrong-name.invalid';

const DAY_MS = 24 * 60 * 60 * 1000;

interface KeyPair {
  privateKey: string;
  publicKey: string;
}

let caPromise: Promise<TestCa> | undefined;

/** The per-process test CA (created on first call). */
export function testCa(): Promise<TestCa> {
  caPromise ??= createTestCa();
  return caPromise;
}

/** Shortcut: `(await testCa()).leaf(kind, names)`. */
export async function leafCertificate(kind: LeafKind, names: string | string[]): Promise<CertPair> {
  return (await testCa()).leaf(kind, names);
}

async function createTestCa(): Promise<TestCa> {
  const [ecRoot, rsaRoot] = await Promise.all([createRoot('ec'), createRoot('rsa')]);
  const ecKeys = keysOf(await generate([{ name: 'commonName', value: 'key-seed-ec' }], { keyType: 'ec', algorithm: 'sha256' }));
  const rsaKeys = keysOf(await generate([{ name: 'commonName', value: 'key-seed-rsa' }], { keyType: 'rsa', keySize: 2048, algorithm: 'sha256' }));
  const weakKeys = keysOf(await generate([{ name: 'commonName', value: 'key-seed-weak' }], { keyType: 'rsa', keySize: 1024, algorithm: 'sha256' }));

  const leaves = new Map<string, Promise<CertPair>>();

  function issue(kind: LeafKind, names: string[]): Promise<CertPair> {
    const now = Date.now();
    const subjectNames = kind === 'wrong-name' ? [WRONG_NAME] : names;
    const isRsa = kind === 'rsa' || kind === 'weak-rsa';
    const keys = kind === 'weak-rsa' ? weakKeys : isRsa ? rsaKeys : ecKeys;
    const root = isRsa ? rsaRoot : ecRoot;
    const validity =
      kind === 'expired' ? { notBeforeDate: new Date(now - 30 * DAY_MS), notAfterDate: new Date(now - DAY_MS) } : { notBeforeDate: new Date(now - DAY_MS), notAfterDate: new Date(now + 30 * DAY_MS) };
    return generate([{ name: 'commonName', value: subjectNames[0] ?? 'localhost' }], {
      keyType: isRsa ? 'rsa' : 'ec',
      algorithm: 'sha256',
      keyPair: keys,
      ...validity,
      ...(kind === 'self-signed' ? {} : { ca: root }),
      extensions: [
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: isRsa },
        { name: 'extKeyUsage', serverAuth: true },
        { name: 'subjectAltName', altNames: subjectNames.map((value) => ({ type: 2 as const, value })) },
      ],
    }).then((pems) => ({ key: pems.private, cert: pems.cert }));
  }

  return {
    caPem: `${ecRoot.cert.trim()}\n${rsaRoot.cert.trim()}\n`,
    rootOf(kind) {
      if (kind === 'self-signed') return null;
      return `${(kind === 'rsa' || kind === 'weak-rsa' ? rsaRoot : ecRoot).cert.trim()}\n`;
    },
    leaf(kind, names) {
      const list = (Array.isArray(names) ? names : [names]).map((name) => name.toLowerCase().replace(/\.$/, ''));
      const cacheKey = `${kind}|${list.join(',')}`;
      let pending = leaves.get(cacheKey);
      if (!pending) {
        pending = issue(kind, list);
        leaves.set(cacheKey, pending);
      }
      return pending;
    },
  };
}

async function createRoot(keyType: 'ec' | 'rsa'): Promise<CertPair> {
  const now = Date.now();
  const pems = await generate(
    [
      { name: 'commonName', value: `Sealgate Test CA (${keyType.toUpperCase()})` },
      { name: 'organizationName', value: 'Sealgate tests' },
    ],
    {
      keyType,
      keySize: 2048,
      algorithm: 'sha256',
      notBeforeDate: new Date(now - 2 * DAY_MS),
      notAfterDate: new Date(now + 365 * DAY_MS),
      extensions: [
        { name: 'basicConstraints', cA: true, critical: true },
        { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
      ],
    },
  );
  return { key: pems.private, cert: pems.cert };
}

function keysOf(pems: { private: string; public: string }): KeyPair {
  return { privateKey: pems.private, publicKey: pems.public };
}

/** Subject CN, issuer CN and validity of a PEM certificate (handy in assertions). */
export function describeCertificate(pem: string): { subject: string; issuer: string; validTo: Date } {
  const cert = new X509Certificate(pem);
  return { subject: cert.subject, issuer: cert.issuer, validTo: new Date(cert.validTo) };
}
