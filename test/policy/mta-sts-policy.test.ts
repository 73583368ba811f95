import { MAX_POLICY_AGE, parseStsPolicy } from '../../src/policy/mta-sts/policy';

function reasonOf(text: string): string {
  const result = parseStsPolicy(text);
  if (result.ok) throw new Error(`expected a rejection, got ${JSON.stringify(result.policy)}`);
  return result.reason;
}

describe('MTA-STS policy parser (RFC 8461 §3.2)', () => {
  it("parses the RFC's example", () => {
    const text = 'version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmx: backupmx.example.com\nmax_age: 604800\n';
    expect(parseStsPolicy(text)).toEqual({
      ok: true,
      policy: { mode: 'enforce', mx: ['mail.example.com', '*.example.net', 'backupmx.example.com'], maxAge: 604800 },
    });
  });

  it('accepts CRLF, mixed line ends, no final line end, tabs and no space after the colon', () => {
    const text = 'version:STSv1\r\nmode:\tenforce\r\nmx:  \t\t *.example.com\nmax_age: 1\nmore:ext e  ns ion';
    expect(parseStsPolicy(text)).toEqual({ ok: true, policy: { mode: 'enforce', mx: ['*.example.com'], maxAge: 1 } });
  });

  it('accepts max_age 0 and the maximum, ignores trailing spaces and blank lines', () => {
    expect(parseStsPolicy('version: STSv1\nmode: enforce\t\nmx: *.example.com \nmax_age: 0 \n\n')).toEqual({ ok: true, policy: { mode: 'enforce', mx: ['*.example.com'], maxAge: 0 } });
    expect(parseStsPolicy(`version: STSv1\nmode: testing\nmx: a.example\nmax_age: ${MAX_POLICY_AGE}`).ok).toBe(true);
  });

  it('allows mode none without mx', () => {
    expect(parseStsPolicy('version: STSv1\nmode: none\nmax_age: 86400\n')).toEqual({ ok: true, policy: { mode: 'none', mx: [], maxAge: 86400 } });
  });

  it('ignores unknown keys and keeps the first of duplicate non-mx keys', () => {
    const text = 'version: STSv1\nmode: testing\nmode: enforce\nfoo: bar\nmx: a.example.com\nmax_age: 10\nmax_age: 20\n';
    expect(parseStsPolicy(text)).toEqual({ ok: true, policy: { mode: 'testing', mx: ['a.example.com'], maxAge: 10 } });
  });

  it.each([
    ['', /no "version"/],
    ['version:STSv0\nmode:none\nmax_age:0', /version "STSv0"/],
    ['version:STSv10\nmode:none\nmax_age:0', /version/],
    ['version: stsv1\nmode:none\nmax_age:0', /version/], // case-sensitive
    ['max_age:0\nmode:none', /no "version"/],
    ['version:STSv1\nmax_age:0\nmx:example.com', /no "mode"/],
    ['version:STSv1\nmode:bad\nmax_age:1', /mode "bad"/],
    ['version:STSv1\nmode:Enforce\nmx:a.example\nmax_age:1', /mode "Enforce"/],
    ['version:STSv1\nmode:none', /no "max_age"/],
    ['version:STSv1\nmode:none\nmax_age:01234567890', /1 to 10 digits/],
    ['version:STSv1\nmode:none\nmax_age:a', /1 to 10 digits/],
    ['version:STSv1\nmode:none\nmax_age:-1', /1 to 10 digits/],
    ['version:STSv1\nmode:none\nmax_age:+5', /1 to 10 digits/],
    ['version:STSv1\nmode:none\nmax_age:1.5', /1 to 10 digits/],
    [`version:STSv1\nmode:none\nmax_age:${MAX_POLICY_AGE + 1}`, /above the maximum/],
    ['version:STSv1\nmax_age:0\nmode:enforce', /at least one "mx"/],
    ['version:STSv1\nmax_age:0\nmode:testing', /at least one "mx"/],
    ['version:STSv1\nmode:enforce\nmax_age:0\nmx:', /mx ""/],
    ['version:STSv1\nmode:enforce\nmax_age:0\nmx:*.*.example', /mx "\*\.\*\.example"/],
    ['version:STSv1\nmode:enforce\nmax_age:0\nmx:**.example', /not a valid/],
    ['version:STSv1\nmode:enforce\nmax_age:0\nmx:test.example-', /not a valid/],
    ['version:STSv1\nmode:enforce\nmax_age:0\nmx:.example.com', /not a valid/],
    ['version:STSv1\nmode:enforce\nmax_age:0\nmx:mail.*.example.com', /not a valid/],
    ['version:STSv1\nmode:none\nmax_age:0\nmx: møx.example', /not a valid/], // U-labels are not allowed
    ['version:STSv1\nmode:none\nmax_age:0\n_bad:test', /line 4/],
    ['version:STSv1\nmode:none\nmax_age:0\na12345678901234567890123456789012:123', /line 4/],
    ['version STSv1\nmode:none\nmax_age:0', /line 1/],
    ['<html>\n<body>not a policy</body>', /line 1/],
  ])('rejects %j with a clear reason', (text, reason) => {
    expect(reasonOf(text)).toMatch(reason);
  });
});
