import { X509Certificate } from 'node:crypto';
import { generate } from 'selfsigned';

/**
 * Certificates for DANE tests: a trust-anchor CA, an intermediate, leaves signed by them (right name, wrong name,
 * expired CA), and a self-signed leaf. EC P-256 throughout (selfsigned signs with the CA key using the leaf's key
 * type). Built once per process.
 */
export interface Pem {
  key: string;
  cert: string;
}

export interface DaneCerts {
  root: Pem;
  intermediate: Pem;
  /** Signed by the intermediate, for mx.dane.test. */
  leafViaIntermediate: Pem;
  /** Signed by the root directly, for mx.dane.test and *.wild.test. */
  leaf: Pem;
  /** Signed by the root, for other.invalid only. */
  wrongNameLeaf: Pem;
  /** A root whose validity ended yesterday, and a (valid) leaf it signed. */
  expiredRoot: Pem;
  leafOfExpiredRoot: Pem;
  /** Another root (not the one the leaves chain to). */
  otherRoot: Pem;
  /** Self-signed, for another name (DANE-EE ignores names). */
  selfSigned: Pem;
}

const DAY = 24 * 60 * 60 * 1000;
let built: Promise<DaneCerts> | undefined;

export function daneCerts(): Promise<DaneCerts> {
  built ??= build();
  return built;
}

async function ca(name: string, notAfter: Date, signer?: Pem): Promise<Pem> {
  const pems = await generate([{ name: 'commonName', value: name }], {
    keyType: 'ec',
    algorithm: 'sha256',
    notBeforeDate: new Date(Date.now() - 10 * DAY),
    notAfterDate: notAfter,
    ...(signer ? { ca: signer } : {}),
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  return { key: pems.private, cert: pems.cert };
}

async function leaf(names: string[], signer?: Pem): Promise<Pem> {
  const pems = await generate([{ name: 'commonName', value: names[0]! }], {
    keyType: 'ec',
    algorithm: 'sha256',
    notBeforeDate: new Date(Date.now() - DAY),
    notAfterDate: new Date(Date.now() + 30 * DAY),
    ...(signer ? { ca: signer } : {}),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: names.map((value) => ({ type: 2 as const, value })) },
    ],
  });
  return { key: pems.private, cert: pems.cert };
}

async function build(): Promise<DaneCerts> {
  const inYear = new Date(Date.now() + 365 * DAY);
  const root = await ca('DANE Test Root', inYear);
  const intermediate = await ca('DANE Test Intermediate', inYear, root);
  const expiredRoot = await ca('DANE Expired Root', new Date(Date.now() - DAY));
  return {
    root,
    intermediate,
    leafViaIntermediate: await leaf(['mx.dane.test'], intermediate),
    leaf: await leaf(['mx.dane.test', '*.wild.test'], root),
    wrongNameLeaf: await leaf(['other.invalid'], root),
    expiredRoot,
    leafOfExpiredRoot: await leaf(['mx.dane.test'], expiredRoot),
    otherRoot: await ca('DANE Other Root', inYear),
    selfSigned: await leaf(['self.invalid']),
  };
}

export function der(pem: Pem | string): Buffer {
  return new X509Certificate(typeof pem === 'string' ? pem : pem.cert).raw;
}
