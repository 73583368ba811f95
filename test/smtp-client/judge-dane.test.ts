import { createHash, X509Certificate } from 'node:crypto';
import type { DaneHostPolicy, TlsaRecord } from '../../src/policy/dane/types';
import type { TlsCheck } from '../../src/policy/tls-profile';
import { judgeSession, type CertificateFacts } from '../../src/smtp-client';
import { daneCerts, der, type DaneCerts } from '../policy/dane/certs';

let c: DaneCerts;
beforeAll(async () => {
  c = await daneCerts();
});

const compliantTls: TlsCheck = {
  compliant: true,
  problems: [],
  negotiated: { protocol: 'TLSv1.3', cipher: 'TLS_AES_128_GCM_SHA256', group: 'P-256', groupBits: 256, peerKey: { type: 'EC', bits: 256 } },
};
const badSuite: TlsCheck = { ...compliantTls, compliant: false, problems: ['cipher suite TLS_CHACHA20_POLY1305_SHA256 is not in the profile'] };
const untrusted: CertificateFacts = {
  subject: 'CN=self.invalid',
  issuer: 'CN=self.invalid',
  validFrom: null,
  validTo: null,
  fingerprint256: null,
  trusted: false,
  nameMatch: false,
  error: 'DEPTH_ZERO_SELF_SIGNED_CERT',
};
const trusted: CertificateFacts = { ...untrusted, trusted: true, nameMatch: true, error: null };
const target = { host: 'mx.dane.test', address: '127.0.0.1', port: 25, servername: 'mx.dane.test' };

function eeRecord(pem: string): TlsaRecord {
  const spki = new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });
  return { usage: 3, selector: 1, matchingType: 1, data: createHash('sha256').update(spki).digest('hex') };
}
function secure(records: TlsaRecord[], usable = records): DaneHostPolicy {
  return { state: 'secure-tlsa', records, usable, referenceNames: ['mx.dane.test', 'dane.test'], tlsaName: '_25._tcp.mx.dane.test', reason: 'test' };
}

describe('judging a session DANE governs', () => {
  it('DANE matches, the certificate is untrusted and requireValidCert is set: compliant (DANE alone authenticates)', () => {
    const judgement = judgeSession(
      { profileCheck: compliantTls, certificate: untrusted, target, peerChainDer: [der(c.selfSigned)] },
      { requireValidCert: true, stsTesting: false, dane: secure([eeRecord(c.selfSigned.cert)]) },
    );
    expect(judgement).toMatchObject({ compliant: true, code: 'compliant', dane: { state: 'secure-tlsa', result: 'match', match: { usage: 3, selector: 1, matchingType: 1, depth: 0 } } });
    expect(judgement.reason).toContain('DANE 3 1 1 matched at depth 0');
  });

  it('DANE fails while the certificate is trusted and named (what MTA-STS enforce would accept): not compliant', () => {
    const judgement = judgeSession(
      { profileCheck: compliantTls, certificate: trusted, target, peerChainDer: [der(c.leaf), der(c.root)] },
      { requireValidCert: true, stsTesting: false, dane: secure([eeRecord(c.selfSigned.cert)]) },
    );
    expect(judgement).toMatchObject({ compliant: false, classification: 'non-compliant', code: 'dane-no-match', dane: { result: 'dane-no-match', match: null } });
  });

  it('DANE fails at level encrypt too (no requireValidCert): DANE makes authentication mandatory', () => {
    expect(
      judgeSession(
        { profileCheck: compliantTls, certificate: trusted, target, peerChainDer: [der(c.leaf)] },
        { requireValidCert: false, stsTesting: false, dane: secure([eeRecord(c.selfSigned.cert)]) },
      ),
    ).toMatchObject({ compliant: false, code: 'dane-no-match' });
  });

  it('DANE matches but the negotiated suite is outside the NIST profile: non-compliant (tls-profile), the match still recorded', () => {
    expect(
      judgeSession(
        { profileCheck: badSuite, certificate: untrusted, target, peerChainDer: [der(c.selfSigned)] },
        { requireValidCert: false, stsTesting: false, dane: secure([eeRecord(c.selfSigned.cert)]) },
      ),
    ).toMatchObject({ compliant: false, classification: 'non-compliant', code: 'tls-profile', dane: { result: 'match' } });
  });

  it('DANE-TA with the wrong name: dane-ta-name-mismatch', () => {
    const ta: TlsaRecord = { usage: 2, selector: 0, matchingType: 1, data: createHash('sha256').update(der(c.root)).digest('hex') };
    expect(
      judgeSession({ profileCheck: compliantTls, certificate: trusted, target, peerChainDer: [der(c.wrongNameLeaf), der(c.root)] }, { requireValidCert: false, stsTesting: false, dane: secure([ta]) }),
    ).toMatchObject({ compliant: false, code: 'dane-ta-name-mismatch' });
  });

  it('secure TLSA records, none usable: TLS is enough, the certificate is not checked even with requireValidCert', () => {
    const pkix: TlsaRecord = { usage: 1, selector: 1, matchingType: 1, data: 'ab'.repeat(32) };
    const judgement = judgeSession(
      { profileCheck: compliantTls, certificate: untrusted, target, peerChainDer: [der(c.selfSigned)] },
      { requireValidCert: true, stsTesting: false, dane: secure([pkix], []) },
    );
    expect(judgement).toMatchObject({ compliant: true, dane: { state: 'secure-tlsa', result: 'no-usable-records', match: null } });
    expect(judgeSession({ profileCheck: badSuite, certificate: untrusted, target }, { requireValidCert: false, stsTesting: false, dane: secure([pkix], []) })).toMatchObject({
      compliant: false,
      code: 'tls-profile',
    });
  });

  it('MTA-STS testing records no would-fail for a host DANE governs', () => {
    expect(
      judgeSession(
        { profileCheck: compliantTls, certificate: untrusted, target, peerChainDer: [der(c.selfSigned)] },
        { requireValidCert: false, stsTesting: true, dane: secure([eeRecord(c.selfSigned.cert)]) },
      ),
    ).toMatchObject({ compliant: true, wouldFail: [] });
  });

  it('DANE not applying (insecure, no-tlsa): judged as before, with the state recorded', () => {
    const insecure: DaneHostPolicy = { state: 'insecure', records: [], usable: [], referenceNames: [], tlsaName: null, reason: 'unsigned' };
    expect(judgeSession({ profileCheck: compliantTls, certificate: untrusted, target }, { requireValidCert: true, stsTesting: false, dane: insecure })).toMatchObject({
      compliant: false,
      code: 'certificate-untrusted',
      dane: { state: 'insecure', result: 'not-applicable' },
    });
    expect(judgeSession({ profileCheck: compliantTls, certificate: untrusted, target }, { requireValidCert: false, stsTesting: false, dane: { ...insecure, state: 'no-tlsa' } })).toMatchObject({
      compliant: true,
      dane: { state: 'no-tlsa', result: 'not-applicable' },
    });
    expect(judgeSession({ profileCheck: compliantTls, certificate: untrusted, target }, { requireValidCert: false, stsTesting: false, dane: null }).dane).toBeNull();
  });
});
