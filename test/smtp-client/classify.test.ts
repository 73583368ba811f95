import { classifySessionError, judgeSession, type CertificateFacts } from '../../src/smtp-client';
import type { TlsCheck } from '../../src/policy/tls-profile';

const error = (message: string, fields: Record<string, unknown>) => Object.assign(new Error(message), fields);

describe('classifying a failed MX session', () => {
  it.each([
    [
      'STARTTLS refused when not advertised',
      error('Error upgrading connection with STARTTLS', { code: 'ETLS', command: 'STARTTLS', response: '500 Error: command not recognized', responseCode: 500 }),
      false,
      false,
      'non-compliant',
      'starttls-not-offered',
    ],
    [
      'STARTTLS 454 when advertised',
      error('Error upgrading connection with STARTTLS', { code: 'ETLS', command: 'STARTTLS', response: '454 4.7.0 TLS not available', responseCode: 454 }),
      true,
      false,
      'transient',
      'starttls-temporary',
    ],
    [
      'STARTTLS 5xx when advertised',
      error('Error upgrading connection with STARTTLS', { code: 'ETLS', command: 'STARTTLS', response: '554 5.7.0 no', responseCode: 554 }),
      true,
      false,
      'non-compliant',
      'starttls-refused',
    ],
    ['protocol version alert', error('tlsv1 alert protocol version', { code: 'ESOCKET', originalCode: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' }), true, true, 'non-compliant', 'tls-handshake-failed'],
    [
      'handshake failure alert',
      error('sslv3 alert handshake failure', { code: 'ESOCKET', originalCode: 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE' }),
      true,
      true,
      'non-compliant',
      'tls-handshake-failed',
    ],
    ['reset mid-handshake', error('read ECONNRESET', { code: 'ESOCKET', originalCode: 'ECONNRESET' }), true, true, 'transient', 'tls-handshake-interrupted'],
    ['timeout mid-handshake', error('TLS handshake timed out', { code: 'UPGRADE_TIMEOUT' }), true, true, 'transient', 'tls-handshake-interrupted'],
    ['connection refused', error('connect ECONNREFUSED 127.0.0.1:25', { code: 'ESOCKET', originalCode: 'ECONNREFUSED' }), null, false, 'transient', 'connect-failed'],
    ['421 greeting', error('Server terminates connection', { code: 'ECONNECTION', response: '421 busy', responseCode: 421 }), null, false, 'transient', 'smtp-refused'],
    ['EHLO 5xx', error('EHLO failed', { code: 'ECONNECTION', command: 'EHLO', response: '550 no', responseCode: 550 }), null, false, 'non-compliant', 'ehlo-refused'],
  ])('%s', (_name, err, advertised, duringHandshake, classification, code) => {
    expect(classifySessionError(err, advertised, duringHandshake)).toMatchObject({ classification, code });
  });
});

describe('judging an established MX session', () => {
  const compliantTls: TlsCheck = {
    compliant: true,
    problems: [],
    negotiated: { protocol: 'TLSv1.3', cipher: 'TLS_AES_128_GCM_SHA256', group: 'P-256', groupBits: 256, peerKey: { type: 'EC', bits: 256 } },
  };
  const cert = (trusted: boolean, nameMatch: boolean): CertificateFacts => ({
    subject: 'CN=mx',
    issuer: 'CN=ca',
    validFrom: null,
    validTo: null,
    fingerprint256: null,
    trusted,
    nameMatch,
    error: trusted ? null : 'DEPTH_ZERO_SELF_SIGNED_CERT',
  });
  const target = { host: 'mx.example', address: '127.0.0.1', port: 25, servername: 'mx.example' };

  it('encrypt: a bad certificate is recorded, not required', () => {
    expect(judgeSession({ profileCheck: compliantTls, certificate: cert(false, false), target }, { requireValidCert: false, stsTesting: false })).toMatchObject({ compliant: true, wouldFail: [] });
  });

  it('verify / MTA-STS enforce: the certificate must be trusted and match', () => {
    expect(judgeSession({ profileCheck: compliantTls, certificate: cert(false, true), target }, { requireValidCert: true, stsTesting: false })).toMatchObject({
      compliant: false,
      code: 'certificate-untrusted',
    });
    expect(judgeSession({ profileCheck: compliantTls, certificate: cert(true, false), target }, { requireValidCert: true, stsTesting: false })).toMatchObject({
      compliant: false,
      code: 'certificate-name-mismatch',
    });
    expect(judgeSession({ profileCheck: compliantTls, certificate: cert(true, true), target }, { requireValidCert: true, stsTesting: false })).toMatchObject({ compliant: true });
  });

  it('MTA-STS testing: delivers but records the certificate failure', () => {
    expect(judgeSession({ profileCheck: compliantTls, certificate: cert(true, false), target }, { requireValidCert: false, stsTesting: true })).toMatchObject({
      compliant: true,
      wouldFail: [{ host: 'mx.example', reason: 'certificate-name-mismatch' }],
    });
  });

  it('a session outside the profile is never compliant', () => {
    const weak: TlsCheck = { ...compliantTls, compliant: false, problems: ['cipher suite TLS_CHACHA20_POLY1305_SHA256 is not in the profile'] };
    expect(judgeSession({ profileCheck: weak, certificate: cert(true, true), target }, { requireValidCert: false, stsTesting: false })).toMatchObject({
      compliant: false,
      classification: 'non-compliant',
      code: 'tls-profile',
    });
  });
});
