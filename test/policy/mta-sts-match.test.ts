import { isValidMxPattern, mxMatchesPattern, mxMatchesPolicy } from '../../src/policy/mta-sts/match';

describe('MTA-STS MX matching (RFC 8461 §4.1)', () => {
  it.each([
    ['mail.example.com', 'mail.example.com'],
    ['MAIL.Example.COM', 'mail.example.com'],
    ['mail.example.com.', 'mail.example.com'],
    ['mail.example.com', 'mail.example.com.'],
    ['mail.example.com', '*.example.com'],
    ['MX1.EXAMPLE.COM.', '*.Example.Com'],
    ['xn--mx-xla.example.com', '*.example.com'],
  ])('%s matches %s', (host, pattern) => {
    expect(mxMatchesPattern(host, pattern)).toBe(true);
  });

  it.each([
    ['example.com', '*.example.com'], // the wildcard needs one label
    ['a.b.example.com', '*.example.com'], // ...and only one
    ['mail.example.com', '*.mail.example.com'],
    ['mailexample.com', '*.example.com'],
    ['mail.example.org', '*.example.com'],
    ['mail.example.com', 'example.com'],
    ['other.example.com', 'mail.example.com'],
    ['', 'mail.example.com'],
    ['.example.com', '*.example.com'],
  ])('%s does not match %s', (host, pattern) => {
    expect(mxMatchesPattern(host, pattern)).toBe(false);
  });

  it('matches a host against any pattern of a policy', () => {
    const patterns = ['mail.example.com', '*.example.net', 'backupmx.example.com'];
    expect(mxMatchesPolicy('smtp.example.net', patterns)).toBe(true);
    expect(mxMatchesPolicy('backupmx.example.com', patterns)).toBe(true);
    expect(mxMatchesPolicy('mail.example.org', patterns)).toBe(false);
  });

  it('tells valid patterns from invalid ones', () => {
    for (const good of ['mail.example.com', '*.example.com', 'mx.', 'xn--bcher-kva.example', 'a-b.example']) expect(isValidMxPattern(good)).toBe(true);
    for (const bad of ['', '*', '*.', '.example.com', '**.example', 'a.*.example', '-a.example', 'a-.example', 'møx.example', 'a b.example', '*.*.example']) {
      expect(isValidMxPattern(bad)).toBe(false);
    }
  });
});
