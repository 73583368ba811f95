import { hasSourceRoute, MAIL_PARAMETERS, normalizeAddress, RCPT_PARAMETERS, unknownParameter } from '../../src/inbound/address';

describe('normalizeAddress', () => {
  test('lower-cases the domain and keeps the local part as given', () => {
    expect(normalizeAddress('John.Doe@Example.COM', 'recipient')).toEqual({ ok: true, address: 'John.Doe@example.com', local: 'John.Doe', domain: 'example.com' });
  });

  test('converts an internationalised domain to its A-label', () => {
    const result = normalizeAddress('user@Bücher.example', 'recipient');
    expect(result).toMatchObject({ ok: true, domain: 'xn--bcher-kva.example' });
  });

  test('the null sender is valid only as a sender', () => {
    expect(normalizeAddress('', 'sender')).toMatchObject({ ok: true, address: '' });
    expect(normalizeAddress('', 'recipient')).toMatchObject({ ok: false, problem: 'empty' });
  });

  test.each([
    ['@relay.example:user@dest.example', 'source-route'],
    ['@a.example,@b.example:user@dest.example', 'source-route'],
    ['user%dest.example@relay.example', 'percent-hack'],
    ['dest.example!user@relay.example', 'bang-path'],
    ['user@[192.0.2.1]', 'address-literal'],
    ['user@[IPv6:2001:db8::1]', 'address-literal'],
    ['user@192.0.2.1', 'address-literal'],
    ['postmaster', 'missing-domain'],
    ['user@', 'missing-domain'],
    ['@dest.example', 'source-route'],
    ['.user@dest.example', 'bad-local-part'],
    ['us..er@dest.example', 'bad-local-part'],
    ['user@localhost', 'bad-domain'],
    ['user@-bad.example', 'bad-domain'],
    ['user@dest..example', 'bad-domain'],
    [`${'a'.repeat(65)}@dest.example`, 'too-long'],
    [`user@${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(60)}.example`, 'too-long'],
  ])('refuses %s (%s)', (input, problem) => {
    expect(normalizeAddress(input, 'recipient')).toMatchObject({ ok: false, problem });
  });

  test('accepts a quoted local part with an @ inside, but not a %-hack inside quotes', () => {
    expect(normalizeAddress('"a@b"@dest.example', 'recipient')).toMatchObject({ ok: true, domain: 'dest.example' });
    expect(normalizeAddress('"a%b"@dest.example', 'recipient')).toMatchObject({ ok: false, problem: 'percent-hack' });
  });
});

describe('hasSourceRoute', () => {
  test('spots a source route in the raw command line', () => {
    expect(hasSourceRoute('RCPT TO:<@relay.example:user@dest.example>')).toBe(true);
    expect(hasSourceRoute('MAIL FROM: <@relay.example:user@dest.example> SIZE=10')).toBe(true);
    expect(hasSourceRoute('RCPT TO:<user@dest.example>')).toBe(false);
    expect(hasSourceRoute('MAIL FROM:<>')).toBe(false);
  });
});

describe('unknownParameter', () => {
  test('allows the documented MAIL and RCPT parameters', () => {
    expect(unknownParameter({ SIZE: '10', BODY: '8BITMIME', SMTPUTF8: true, REQUIRETLS: true, RET: 'HDRS', ENVID: 'x' }, MAIL_PARAMETERS)).toBeUndefined();
    expect(unknownParameter({ NOTIFY: 'FAILURE', ORCPT: 'rfc822;a@b.example' }, RCPT_PARAMETERS)).toBeUndefined();
    expect(unknownParameter(false, MAIL_PARAMETERS)).toBeUndefined();
  });

  test('names the first unknown one', () => {
    expect(unknownParameter({ SIZE: '10', 'MT-PRIORITY': '3' }, MAIL_PARAMETERS)).toBe('MT-PRIORITY');
    expect(unknownParameter({ SIZE: '10' }, RCPT_PARAMETERS)).toBe('SIZE');
  });
});
