import type { MtaStsResult } from '../../src/policy';
import type { DaneHostPolicy, TlsaRecord } from '../../src/policy/dane/types';
import type { Candidate } from '../../src/policy/plan';
import { requireTlsEligibility, REQUIRETLS_POLICY_UNAVAILABLE, REQUIRETLS_UNAUTHENTICATED_MX } from '../../src/policy/requiretls';

/** RFC 8689 §4.2.1: which MX may receive a REQUIRETLS message, before any connection is made. */

const EE: TlsaRecord = { usage: 3, selector: 1, matchingType: 1, data: 'ab'.repeat(32) };
const TA: TlsaRecord = { usage: 2, selector: 0, matchingType: 1, data: 'cd'.repeat(32) };
const PKIX_EE: TlsaRecord = { usage: 1, selector: 1, matchingType: 1, data: 'ef'.repeat(32) };

function dane(state: DaneHostPolicy['state'], records: TlsaRecord[] = [], usable: TlsaRecord[] = records): DaneHostPolicy {
  return { state, records, usable, referenceNames: ['mx1.example.test', 'example.test'], tlsaName: state === 'secure-tlsa' ? '_25._tcp.mx1.example.test' : null, reason: state };
}

function candidate(over: Partial<Pick<Candidate, 'dane' | 'stsMatch' | 'stsTesting'>> = {}): Pick<Candidate, 'host' | 'dane' | 'stsMatch' | 'stsTesting'> {
  return { host: 'mx1.example.test', dane: null, stsMatch: null, stsTesting: false, ...over };
}

const noPolicy: MtaStsResult = { record: null, policy: null, policyId: null, source: null, error: null, errorType: null, temporary: false };
const fetchFailed: MtaStsResult = { ...noPolicy, record: { id: '20261127T000000' }, error: 'HTTP 503', errorType: 'sts-policy-fetch-error' };
const invalidPolicy: MtaStsResult = { ...noPolicy, record: { id: '20261127T000000' }, error: 'bad version', errorType: 'sts-policy-invalid' };

describe('requireTlsEligibility', () => {
  it('DANE secure-tlsa with a usable record (3 1 1 or 2 0 1): eligible via DANE', () => {
    expect(requireTlsEligibility(candidate({ dane: dane('secure-tlsa', [EE]) }), null)).toEqual({ eligible: true, via: 'dane' });
    expect(requireTlsEligibility(candidate({ dane: dane('secure-tlsa', [PKIX_EE, TA], [TA]) }), null)).toEqual({ eligible: true, via: 'dane' });
  });

  it('DANE secure-tlsa with only unusable records (usage 0/1): not eligible, even with an MTA-STS enforce match (DANE decides)', () => {
    const result = requireTlsEligibility(candidate({ dane: dane('secure-tlsa', [PKIX_EE], []), stsMatch: true }), null);
    expect(result).toMatchObject({ eligible: false, code: REQUIRETLS_UNAUTHENTICATED_MX, transient: false });
    expect(result.eligible === false && result.reason).toMatch(/none is usable/);
  });

  it('MTA-STS enforce naming the MX: eligible via MTA-STS, whatever the DANE state where DANE does not apply', () => {
    for (const state of [null, dane('insecure'), dane('no-tlsa')]) {
      expect(requireTlsEligibility(candidate({ dane: state, stsMatch: true }), null)).toEqual({ eligible: true, via: 'mta-sts' });
    }
  });

  it('MTA-STS testing mode: not eligible, whether or not the MX matches', () => {
    for (const stsMatch of [true, false]) {
      const result = requireTlsEligibility(candidate({ stsMatch, stsTesting: true }), null);
      expect(result).toMatchObject({ eligible: false, code: REQUIRETLS_UNAUTHENTICATED_MX, transient: false });
      expect(result.eligible === false && result.reason).toMatch(/testing mode/);
    }
  });

  it('no DANE and no MTA-STS (the default level, a route, DANE insecure or no-tlsa): not eligible, permanently', () => {
    for (const state of [null, dane('insecure'), dane('no-tlsa')]) {
      const result = requireTlsEligibility(candidate({ dane: state }), noPolicy);
      expect(result).toMatchObject({ eligible: false, code: REQUIRETLS_UNAUTHENTICATED_MX, transient: false });
      expect(result.eligible === false && result.reason).toContain('mx1.example.test');
    }
  });

  it('a published MTA-STS policy that could not be fetched: not eligible now, but transient (the message waits)', () => {
    expect(requireTlsEligibility(candidate(), fetchFailed)).toMatchObject({ eligible: false, code: REQUIRETLS_POLICY_UNAVAILABLE, transient: true });
    const badHttpsCert: MtaStsResult = { ...fetchFailed, error: 'certificate has expired', errorType: 'sts-webpki-invalid' };
    expect(requireTlsEligibility(candidate(), badHttpsCert)).toMatchObject({ eligible: false, code: REQUIRETLS_POLICY_UNAVAILABLE, transient: true });
    // An invalid policy is the domain's own error, not a passing one: no authentication.
    expect(requireTlsEligibility(candidate(), invalidPolicy)).toMatchObject({ eligible: false, code: REQUIRETLS_UNAUTHENTICATED_MX, transient: false });
  });

  it('DANE bogus (a host the planner excludes, should one reach here): not eligible even with MTA-STS, and transient (never a bounce)', () => {
    expect(requireTlsEligibility(candidate({ dane: dane('bogus'), stsMatch: true }), null)).toMatchObject({ eligible: false, code: REQUIRETLS_UNAUTHENTICATED_MX, transient: true });
  });
});
