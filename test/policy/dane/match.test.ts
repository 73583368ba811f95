import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { associationData, isUsableRecord, matchChain, usableRecords } from '../../../src/policy/dane/match';
import type { TlsaRecord } from '../../../src/policy/dane/types';
import { daneCerts, der, type DaneCerts } from './certs';

let c: DaneCerts;
beforeAll(async () => {
  c = await daneCerts();
});

const NOW = Date.now();
const names = { referenceNames: ['mx.dane.test', 'dane.test'], now: NOW };

function spki(pem: string): Buffer {
  return new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });
}
function sha(alg: 'sha256' | 'sha512', bytes: Buffer): string {
  return createHash(alg).update(bytes).digest('hex');
}
function record(usage: number, selector: number, matchingType: number, data: string): TlsaRecord {
  return { usage, selector, matchingType, data };
}

describe('usable records (RFC 7672 §3.1)', () => {
  it('keeps usages 2 and 3 with selector 0/1 and matching 0/1/2, and drops PKIX usages 0 and 1', () => {
    const records = [record(0, 0, 1, 'aa'), record(1, 1, 1, 'bb'), record(2, 0, 1, 'cc'), record(3, 1, 1, 'dd'), record(3, 2, 1, 'ee'), record(3, 1, 3, 'ff'), record(4, 1, 1, 'ab')];
    expect(usableRecords(records)).toEqual([record(2, 0, 1, 'cc'), record(3, 1, 1, 'dd')]);
    expect(isUsableRecord(record(3, 1, 2, 'not hex'))).toBe(false);
  });
});

describe('association data', () => {
  it('computes 3 1 1 as openssl does (SHA-256 of the DER SubjectPublicKeyInfo)', () => {
    const fromOpenssl = execFileSync('sh', ['-c', 'openssl x509 -pubkey -noout | openssl pkey -pubin -outform DER | openssl dgst -sha256 -r'], { input: c.leaf.cert }).toString().split(' ')[0];
    expect(associationData(der(c.leaf), 1, 1)).toBe(fromOpenssl);
  });
});

describe('DANE-EE (usage 3): the leaf, name and expiry ignored', () => {
  it('3 0 0 matches the whole DER certificate', () => {
    const leaf = der(c.selfSigned);
    expect(matchChain([record(3, 0, 0, leaf.toString('hex'))], [leaf], names)).toEqual({ ok: true, match: { ...record(3, 0, 0, leaf.toString('hex')), depth: 0 } });
  });

  it('3 1 1 matches the SPKI SHA-256 of a self-signed certificate for another name', () => {
    const data = sha('sha256', spki(c.selfSigned.cert));
    expect(matchChain([record(3, 1, 1, data.toUpperCase())], [der(c.selfSigned)], names)).toEqual({ ok: true, match: { ...record(3, 1, 1, data), depth: 0 } });
  });

  it('3 1 2 matches the SPKI SHA-512', () => {
    const data = sha('sha512', spki(c.selfSigned.cert));
    expect(matchChain([record(3, 1, 2, data)], [der(c.selfSigned)], names)).toMatchObject({ ok: true, match: { usage: 3, selector: 1, matchingType: 2, depth: 0 } });
  });

  it('3 0 1 matches the certificate SHA-256, and does not match another certificate', () => {
    const data = sha('sha256', der(c.selfSigned));
    expect(matchChain([record(3, 0, 1, data)], [der(c.selfSigned)], names)).toMatchObject({ ok: true, match: { usage: 3, selector: 0, matchingType: 1 } });
    expect(matchChain([record(3, 0, 1, data)], [der(c.leaf)], names)).toMatchObject({ ok: false, code: 'dane-no-match' });
  });

  it('an expired leaf still matches DANE-EE', () => {
    // leafOfExpiredRoot is valid, but the point is that usage 3 never looks at the chain or dates: use the expired root itself as a "leaf".
    const data = sha('sha256', spki(c.expiredRoot.cert));
    expect(matchChain([record(3, 1, 1, data)], [der(c.expiredRoot)], names)).toMatchObject({ ok: true });
  });

  it('a usage-3 record never matches a certificate above the leaf', () => {
    const data = sha('sha256', spki(c.root.cert));
    expect(matchChain([record(3, 1, 1, data)], [der(c.leaf), der(c.root)], names)).toMatchObject({ ok: false, code: 'dane-no-match' });
  });
});

describe('DANE-TA (usage 2): a CA the server sent, the chain to it, its dates and the name', () => {
  it('2 0 1 matches the trust anchor certificate, at its depth', () => {
    const data = sha('sha256', der(c.root));
    expect(matchChain([record(2, 0, 1, data)], [der(c.leaf), der(c.root)], names)).toEqual({ ok: true, match: { ...record(2, 0, 1, data), depth: 1 } });
  });

  it('2 1 1 matches the trust anchor SPKI through an intermediate (depth 2)', () => {
    const data = sha('sha256', spki(c.root.cert));
    expect(matchChain([record(2, 1, 1, data)], [der(c.leafViaIntermediate), der(c.intermediate), der(c.root)], names)).toMatchObject({ ok: true, match: { depth: 2 } });
    // The intermediate as the trust anchor works too.
    const intermediate = sha('sha256', spki(c.intermediate.cert));
    expect(matchChain([record(2, 1, 1, intermediate)], [der(c.leafViaIntermediate), der(c.intermediate), der(c.root)], names)).toMatchObject({ ok: true, match: { depth: 1 } });
  });

  it('a wildcard name matches only as the whole left-most label', () => {
    const data = sha('sha256', der(c.root));
    const chain = [der(c.leaf), der(c.root)];
    expect(matchChain([record(2, 0, 1, data)], chain, { referenceNames: ['mx.wild.test'], now: NOW })).toMatchObject({ ok: true });
    expect(matchChain([record(2, 0, 1, data)], chain, { referenceNames: ['a.b.wild.test'], now: NOW })).toMatchObject({ ok: false, code: 'dane-ta-name-mismatch' });
  });

  it('wrong name: dane-ta-name-mismatch; the next-hop domain as a reference name is honoured', () => {
    const data = sha('sha256', der(c.root));
    expect(matchChain([record(2, 0, 1, data)], [der(c.wrongNameLeaf), der(c.root)], names)).toMatchObject({ ok: false, code: 'dane-ta-name-mismatch' });
    expect(matchChain([record(2, 0, 1, data)], [der(c.wrongNameLeaf), der(c.root)], { referenceNames: ['mx.dane.test', 'other.invalid'], now: NOW })).toMatchObject({ ok: true });
  });

  it('expired trust anchor: dane-ta-expired', () => {
    const data = sha('sha256', der(c.expiredRoot));
    expect(matchChain([record(2, 0, 1, data)], [der(c.leafOfExpiredRoot), der(c.expiredRoot)], names)).toMatchObject({ ok: false, code: 'dane-ta-expired' });
  });

  it('a leaf outside its validity at `now` fails DANE-TA (but would pass DANE-EE)', () => {
    const ta = sha('sha256', der(c.root));
    const later = NOW + 60 * 24 * 60 * 60 * 1000;
    expect(matchChain([record(2, 0, 1, ta)], [der(c.leaf), der(c.root)], { ...names, now: later })).toMatchObject({ ok: false, code: 'dane-ta-expired' });
    const ee = sha('sha256', spki(c.leaf.cert));
    expect(matchChain([record(3, 1, 1, ee)], [der(c.leaf), der(c.root)], { ...names, now: later })).toMatchObject({ ok: true });
  });

  it('a matched CA the leaf does not chain to: dane-ta-chain', () => {
    const data = sha('sha256', der(c.otherRoot));
    expect(matchChain([record(2, 0, 1, data)], [der(c.leaf), der(c.otherRoot)], names)).toMatchObject({ ok: false, code: 'dane-ta-chain' });
  });

  it('a trust anchor the server did not send does not match', () => {
    const data = sha('sha256', der(c.root));
    expect(matchChain([record(2, 0, 1, data)], [der(c.leaf)], names)).toMatchObject({ ok: false, code: 'dane-no-match' });
  });

  it('a DANE-TA record matching the leaf itself (not a CA) does not match', () => {
    const data = sha('sha256', der(c.leaf));
    expect(matchChain([record(2, 0, 1, data)], [der(c.leaf), der(c.root)], names)).toMatchObject({ ok: false, code: 'dane-no-match' });
  });
});

describe('record sets', () => {
  it('only usage 0/1 records: nothing usable, no match', () => {
    const data = sha('sha256', spki(c.leaf.cert));
    expect(usableRecords([record(0, 1, 1, data), record(1, 1, 1, data)])).toEqual([]);
    expect(matchChain([record(0, 1, 1, data), record(1, 1, 1, data)], [der(c.leaf), der(c.root)], names)).toMatchObject({ ok: false, code: 'dane-no-match' });
  });

  it('mixed: a failing TA record and a matching EE record match; an unusable record that would match is ignored', () => {
    const ee = sha('sha256', spki(c.leaf.cert));
    const otherTa = sha('sha256', der(c.otherRoot));
    expect(matchChain([record(2, 0, 1, otherTa), record(1, 1, 1, ee), record(3, 1, 1, ee)], [der(c.leaf), der(c.root)], names)).toMatchObject({ ok: true, match: { usage: 3, depth: 0 } });
    expect(matchChain([record(1, 1, 1, ee), record(2, 0, 1, otherTa)], [der(c.leaf), der(c.root)], names)).toMatchObject({ ok: false, code: 'dane-no-match' });
  });

  it('the most telling failure wins: a name mismatch over a plain no-match', () => {
    const ta = sha('sha256', der(c.root));
    expect(matchChain([record(3, 1, 1, 'ab'.repeat(32)), record(2, 0, 1, ta)], [der(c.wrongNameLeaf), der(c.root)], names)).toMatchObject({ ok: false, code: 'dane-ta-name-mismatch' });
  });

  it('no certificate: dane-no-match', () => {
    expect(matchChain([record(3, 1, 1, 'ab'.repeat(32))], [], names)).toMatchObject({ ok: false, code: 'dane-no-match' });
  });
});
