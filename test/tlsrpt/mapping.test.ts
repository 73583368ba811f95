import type { DaneHostPolicy } from '../../src/policy/dane/types';
import { countOf, resultType, sessionPolicy, type TlsSessionFacts } from '../../src/tlsrpt';

const AT = Date.parse('2026-11-29T12:00:00Z');

function event(overrides: Partial<TlsSessionFacts> = {}): TlsSessionFacts {
  return { at: AT, domain: 'example.org', sts: null, mx: 'mx1.example.org', dane: null, address: '127.0.0.10', localAddress: '127.0.0.1', failure: null, ...overrides };
}

const secureTlsa: DaneHostPolicy = {
  state: 'secure-tlsa',
  records: [
    { usage: 3, selector: 1, matchingType: 1, data: 'ab'.repeat(32) },
    { usage: 2, selector: 0, matchingType: 1, data: 'cd'.repeat(32) },
  ],
  usable: [],
  referenceNames: ['mx1.example.org'],
  tlsaName: '_25._tcp.mx1.example.org',
  reason: 'secure TLSA records',
};

describe('relay codes as RFC 8460 result types', () => {
  test.each([
    ['starttls-not-offered', null, 'starttls-not-supported'],
    ['starttls-refused', null, 'starttls-not-supported'],
    ['certificate-name-mismatch', null, 'certificate-host-mismatch'],
    ['certificate-untrusted', 'CERT_HAS_EXPIRED', 'certificate-expired'],
    ['certificate-untrusted', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'certificate-not-trusted'],
    ['certificate-untrusted', null, 'certificate-not-trusted'],
    ['tls-handshake-failed', null, 'validation-failure'],
    ['tls-profile', null, 'validation-failure'],
    ['dane-no-match', null, 'validation-failure'],
    ['dane-ta-chain', null, 'certificate-not-trusted'],
    ['dane-ta-expired', null, 'certificate-expired'],
    ['dane-ta-name-mismatch', null, 'certificate-host-mismatch'],
    ['dane-tlsa-bogus', null, 'dnssec-invalid'],
    ['sts-policy-fetch-error', null, 'sts-policy-fetch-error'],
    ['sts-policy-invalid', null, 'sts-policy-invalid'],
    ['sts-webpki-invalid', null, 'sts-webpki-invalid'],
    ['mx-not-in-policy', null, 'validation-failure'],
  ])('%s (%s) -> %s', (code, certError, expected) => {
    expect(resultType(code, certError)).toBe(expected);
  });

  test.each(['connect-failed', 'tls-handshake-interrupted', 'starttls-temporary', 'smtp-refused', 'no-address', 'address-lookup-temporary', 'address-cap-reached', 'connection-lost'])(
    'transient or non-TLS code %s is not counted',
    (code) => {
      expect(resultType(code)).toBeNull();
      expect(countOf(event({ failure: { code, reason: code, certificateError: null } }))).toBeNull();
    },
  );
});

describe('the policy a session counts under', () => {
  test('secure TLSA records make a tlsa policy: the records as "u s m hex", the MX as mx-host', () => {
    expect(sessionPolicy(event({ dane: secureTlsa, sts: { mode: 'enforce', mx: ['*.example.org'], maxAge: 86400 } }))).toEqual({
      type: 'tlsa',
      strings: [`3 1 1 ${'ab'.repeat(32)}`, `2 0 1 ${'cd'.repeat(32)}`],
      mxHost: ['mx1.example.org'],
    });
  });

  test.each(['insecure', 'no-tlsa', 'bogus'] as const)('DANE state %s does not make a tlsa policy', (state) => {
    expect(sessionPolicy(event({ dane: { ...secureTlsa, state } })).type).toBe('no-policy-found');
  });

  test('an MTA-STS policy in enforce or testing makes an sts policy: its lines, its mx patterns', () => {
    expect(sessionPolicy(event({ sts: { mode: 'testing', mx: ['mx1.example.org', '*.backup.example.org'], maxAge: 604800 } }))).toEqual({
      type: 'sts',
      strings: ['version: STSv1', 'mode: testing', 'mx: mx1.example.org', 'mx: *.backup.example.org', 'max_age: 604800'],
      mxHost: ['mx1.example.org', '*.backup.example.org'],
    });
  });

  test('mode none, or nothing, is no-policy-found', () => {
    expect(sessionPolicy(event({ sts: { mode: 'none', mx: [], maxAge: 86400 } }))).toEqual({ type: 'no-policy-found', strings: [], mxHost: [] });
    expect(sessionPolicy(event())).toEqual({ type: 'no-policy-found', strings: [], mxHost: [] });
  });
});

describe('what one event counts', () => {
  test('a compliant session is a success under its policy', () => {
    expect(countOf(event())).toEqual({ policy: { type: 'no-policy-found', strings: [], mxHost: [] }, detail: null });
  });

  test('a failure carries sending and receiving addresses, the MX and a reason code', () => {
    expect(countOf(event({ failure: { code: 'certificate-untrusted', reason: 'certificate not trusted (CERT_HAS_EXPIRED)', certificateError: 'CERT_HAS_EXPIRED' } }))?.detail).toEqual({
      'result-type': 'certificate-expired',
      'sending-mta-ip': '127.0.0.1',
      'receiving-mx-hostname': 'mx1.example.org',
      'receiving-ip': '127.0.0.10',
      'failure-reason-code': 'CERT_HAS_EXPIRED',
    });
  });

  test('a validation-failure says why in its reason code (bounded)', () => {
    const detail = countOf(event({ failure: { code: 'tls-profile', reason: `negotiated TLS outside the profile: ${'x'.repeat(500)}`, certificateError: null } }))?.detail;
    expect(detail?.['failure-reason-code']).toMatch(/^tls-profile: negotiated TLS outside the profile: x+$/);
    expect(detail?.['failure-reason-code']?.length).toBe(200);
  });

  test('a domain-wide MTA-STS fetch failure has no MX or addresses', () => {
    expect(countOf(event({ mx: null, address: null, localAddress: null, failure: { code: 'sts-webpki-invalid', reason: 'cert', certificateError: null } }))).toEqual({
      policy: { type: 'no-policy-found', strings: [], mxHost: [] },
      detail: { 'result-type': 'sts-webpki-invalid', 'failure-reason-code': 'sts-webpki-invalid' },
    });
  });
});
