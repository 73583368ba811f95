import { parseTlsRptRecord, selectTlsRptRecord, tlsRptRecordName } from '../../src/tlsrpt/record';

/** The `_smtp._tls` TXT record (RFC 8460 §3), parsed strictly: what is accepted, and what makes it invalid. */

describe('parseTlsRptRecord', () => {
  it('reads mailto and https destinations, in order, with spaces around separators', () => {
    const result = parseTlsRptRecord('v=TLSRPTv1; rua=mailto:tlsrpt@example.com , https://rpt.example.com/v1 ;');
    expect(result).toEqual({
      ok: true,
      record: {
        rua: [
          { kind: 'mailto', uri: 'mailto:tlsrpt@example.com', address: 'tlsrpt@example.com' },
          { kind: 'https', uri: 'https://rpt.example.com/v1', url: 'https://rpt.example.com/v1' },
        ],
        extensions: {},
      },
    });
  });

  it('keeps a port and a query of an https URI', () => {
    const result = parseTlsRptRecord('v=TLSRPTv1;rua=https://rpt.example.com:8443/tls?src=mx');
    expect(result.ok && result.record.rua[0]).toEqual({ kind: 'https', uri: 'https://rpt.example.com:8443/tls?src=mx', url: 'https://rpt.example.com:8443/tls?src=mx' });
  });

  it('ignores unknown fields (kept for the log)', () => {
    const result = parseTlsRptRecord('v=TLSRPTv1; rua=mailto:r@example.com; x-future=yes.1');
    expect(result).toMatchObject({ ok: true, record: { extensions: { 'x-future': 'yes.1' } } });
  });

  it('decodes a percent-encoded "!" in a mailto address; https keeps encoded "," and ";" in its path', () => {
    const result = parseTlsRptRecord('v=TLSRPTv1; rua=mailto:tls%21rpt@example.com,https://r.example.com/a%2Cb%3Bc');
    expect(result.ok && result.record.rua).toEqual([
      { kind: 'mailto', uri: 'mailto:tls%21rpt@example.com', address: 'tls!rpt@example.com' },
      { kind: 'https', uri: 'https://r.example.com/a%2Cb%3Bc', url: 'https://r.example.com/a%2Cb%3Bc' },
    ]);
  });

  it.each([
    ['a raw "!" (a size limit in DMARC syntax)', 'v=TLSRPTv1; rua=mailto:r@example.com!10m', /must be percent-encoded/],
    ['a broken percent-encoding', 'v=TLSRPTv1; rua=mailto:r%2@example.com', /malformed percent-encoding/],
    ['a missing rua', 'v=TLSRPTv1; x=1', /no rua field/],
    ['only the version', 'v=TLSRPTv1;', /no rua field/],
    ['two rua fields', 'v=TLSRPTv1; rua=mailto:a@example.com; rua=mailto:b@example.com', /more than one rua/],
    ['an empty URI in the list', 'v=TLSRPTv1; rua=mailto:a@example.com,,https://r.example.com/', /empty URI/],
    ['an ftp URI', 'v=TLSRPTv1; rua=ftp://r.example.com/reports', /scheme "ftp"/],
    ['an http URI', 'v=TLSRPTv1; rua=http://r.example.com/reports', /scheme "http"/],
    ['a URI without scheme', 'v=TLSRPTv1; rua=r@example.com', /scheme "none"/],
    ['a mailto without an address', 'v=TLSRPTv1; rua=mailto:nobody', /not a mailto: with one address/],
    ['a mailto with header fields', 'v=TLSRPTv1; rua=mailto:r@example.com?subject=x', /header fields/],
    ['https with user info', 'v=TLSRPTv1; rua=https://u:p@r.example.com/', /not a valid https URL/],
    ['a second version field', 'v=TLSRPTv1; v=TLSRPTv1; rua=mailto:r@example.com', /more than one version/],
    ['a field without "="', 'v=TLSRPTv1; rua=mailto:r@example.com; junk', /malformed field "junk"/],
    ['a wrong version', 'v=TLSRPTv2; rua=mailto:r@example.com', /bad version/],
    ['an unknown field with a space in its value', 'v=TLSRPTv1; rua=mailto:r@example.com; x=a b', /malformed value/],
  ])('refuses %s', (_what, text, reason) => {
    const result = parseTlsRptRecord(text);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.reason).toMatch(reason);
  });
});

describe('selectTlsRptRecord', () => {
  it('ignores TXT records that are not TLS-RPT ones', () => {
    const result = selectTlsRptRecord(['v=spf1 -all', 'v=TLSRPTv1; rua=mailto:r@example.com', 'v=TLSRPTv1x']);
    expect(result).toMatchObject({ ok: true, record: { rua: [{ address: 'r@example.com' }] } });
  });

  it('two TLS-RPT records: invalid, even when both parse', () => {
    const result = selectTlsRptRecord(['v=TLSRPTv1; rua=mailto:a@example.com', 'v=TLSRPTv1; rua=mailto:b@example.com']);
    expect(result).toEqual({ ok: false, reason: '2 TXT records start with "v=TLSRPTv1;" (exactly one is allowed)' });
  });

  it('none: invalid', () => {
    expect(selectTlsRptRecord(['v=STSv1; id=1'])).toEqual({ ok: false, reason: 'no TXT record starting with "v=TLSRPTv1;"' });
    expect(selectTlsRptRecord([])).toMatchObject({ ok: false });
  });

  it('the one candidate must itself be valid', () => {
    expect(selectTlsRptRecord(['v=TLSRPTv1; rua=gopher://x'])).toMatchObject({ ok: false, reason: expect.stringMatching(/gopher/) });
  });
});

test('tlsRptRecordName', () => {
  expect(tlsRptRecordName('Example.COM.')).toBe('_smtp._tls.example.com');
});
