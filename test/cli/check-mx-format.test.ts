import { formatProbe } from '../../src/cli/commands/check';
import { probeExitCode, type MxProbeReport } from '../../src/outbound/check';
import { ehloKeywords } from '../../src/smtp-client/session';

const BASE: MxProbeReport = {
  domain: 'partner.test',
  host: 'mx1.partner.test',
  port: 25,
  policy: { source: 'domain-rule', mode: null, id: null, level: 'verify' },
  requireValidCert: true,
  stsMatch: null,
  mtaStsError: null,
  addresses: ['192.0.2.10'],
  address: '192.0.2.10',
  starttls: true,
  ehlo: { beforeTls: ['PIPELINING', 'STARTTLS', 'SIZE 10240000'], afterTls: null },
  tls: { protocol: 'TLSv1', cipher: 'TLS_RSA_WITH_AES_128_CBC_SHA', group: null, groupBits: null },
  chain: [
    {
      subject: 'CN=mx1.partner.test',
      issuer: 'CN=Partner CA',
      san: ['DNS:mx1.partner.test', 'DNS:mx2.partner.test'],
      keyType: 'rsa',
      keyBits: 1024,
      curve: null,
      validFrom: '2026-01-01T00:00:00.000Z',
      validTo: '2027-01-01T00:00:00.000Z',
      sha256: 'AA:BB',
      spkiSha256: 'CC:DD',
    },
  ],
  verified: false,
  verifyError: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  nameMatch: true,
  profile: null,
  compliant: false,
  classification: 'non-compliant',
  code: 'tls-handshake-failed',
  reason: 'TLS handshake failed; the server negotiates TLSv1 TLS_RSA_WITH_AES_128_CBC_SHA with a permissive client',
  offered: { protocol: 'TLSv1', cipher: 'TLS_RSA_WITH_AES_128_CBC_SHA', group: null },
};

describe('sealgate check --mx report', () => {
  test('text: a failed handshake shows the permissive session as such, the profile verdict, the chain with key and fingerprints', () => {
    const text = formatProbe(BASE);
    expect(text).toContain('Domain:   partner.test (level verify, source domain-rule, valid certificate required)');
    expect(text).toContain('Host:     mx1.partner.test port 25 [192.0.2.10], probed 192.0.2.10');
    expect(text).toContain('Verdict:  NON-COMPLIANT (tls-handshake-failed): TLS handshake failed;');
    expect(text).toContain('EHLO:     PIPELINING STARTTLS SIZE 10240000');
    expect(text).toContain('TLS:      TLSv1 TLS_RSA_WITH_AES_128_CBC_SHA group ? (permissive client only)');
    expect(text).toContain('Profile:  NIST SP 800-52r2 NOT compliant: no handshake with the profile');
    expect(text).toContain('Chain:    NOT verified (UNABLE_TO_GET_ISSUER_CERT_LOCALLY); name matches mx1.partner.test');
    expect(text).toContain('    SAN     DNS:mx1.partner.test, DNS:mx2.partner.test');
    expect(text).toContain('    key     rsa 1024 bits');
    expect(text).toContain('    sha256  AA:BB');
    expect(text).toContain('    spki    CC:DD (SHA-256 of the public key)');
    expect(text).not.toContain('EHLO/TLS');
  });

  test('text: an unreachable host shows the error and no TLS lines', () => {
    const text = formatProbe({
      ...BASE,
      starttls: null,
      ehlo: { beforeTls: null, afterTls: null },
      tls: null,
      chain: [],
      verified: null,
      offered: null,
      classification: 'transient',
      code: 'connect-failed',
      reason: 'connect ECONNREFUSED 192.0.2.10:25',
    });
    expect(text).toContain('Verdict:  TRANSIENT (connect-failed): connect ECONNREFUSED 192.0.2.10:25');
    expect(text).toContain('STARTTLS: unknown');
    expect(text).not.toMatch(/^(TLS|Chain|Profile|EHLO):/m);
  });

  test('exit codes: compliant 0, non-compliant 3, transient 4, permanent 5', () => {
    expect(probeExitCode({ compliant: true, classification: null })).toBe(0);
    expect(probeExitCode({ compliant: false, classification: 'non-compliant' })).toBe(3);
    expect(probeExitCode({ compliant: false, classification: 'transient' })).toBe(4);
    expect(probeExitCode({ compliant: false, classification: 'permanent' })).toBe(5);
  });

  test('EHLO keywords: the greeting line dropped, reply codes stripped', () => {
    expect(ehloKeywords('250-mx1.partner.test Hello\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 SIZE 1000')).toEqual(['PIPELINING', 'STARTTLS', 'SIZE 1000']);
    expect(ehloKeywords('250 mx1.partner.test')).toEqual([]);
  });
});
