import { checkMailFrom, checkRcptTo, DISK_LOW, mailParameterNames, requireTlsParameterRefusal, sourceRouteRefusal, type MailFacts, type RcptFacts } from '../../src/inbound/session-rules';

/** A submission session after STARTTLS and AUTH, on a listener that requires both. */
const AUTHED: MailFacts = { requireTls: true, secure: true, authRequired: true, user: {} };

describe('MAIL FROM rules', () => {
  test('accepts a sender and normalises its domain; the null sender is a valid sender', () => {
    expect(checkMailFrom(AUTHED, { address: 'Clinic@Sender.EXAMPLE', args: false })).toEqual({ ok: true, sender: 'Clinic@sender.example' });
    expect(checkMailFrom(AUTHED, { address: '', args: false })).toEqual({ ok: true, sender: '' });
    expect(checkMailFrom(AUTHED, { address: 'a@b.example', args: { SIZE: '100', BODY: '8BITMIME', SMTPUTF8: true, REQUIRETLS: true, RET: 'HDRS', ENVID: 'x', AUTH: '<>' } })).toEqual({
      ok: true,
      sender: 'a@b.example',
    });
  });

  test('a smarthost listener (no TLS or AUTH required) accepts an unauthenticated plaintext client', () => {
    expect(checkMailFrom({ requireTls: false, secure: false, authRequired: false }, { address: 'a@b.example', args: false })).toEqual({ ok: true, sender: 'a@b.example' });
  });

  test('TLS required and not started: 530 5.7.0, before anything else is looked at', () => {
    expect(checkMailFrom({ requireTls: true, secure: false, authRequired: true }, { address: 'not an address', args: { BOGUS: true } })).toEqual({
      ok: false,
      refusal: { reason: 'tls-required', code: 530, text: '5.7.0 Must issue a STARTTLS command first' },
    });
  });

  test('AUTH required and not done: 530 5.7.0 Authentication required, before parameters and address', () => {
    expect(checkMailFrom({ requireTls: true, secure: true, authRequired: true }, { address: 'not an address', args: { BOGUS: true } })).toEqual({
      ok: false,
      refusal: { reason: 'auth-required', code: 530, text: '5.7.0 Authentication required' },
    });
  });

  test('an unknown parameter: 555 5.5.4, its name echoed printable and bounded', () => {
    expect(checkMailFrom(AUTHED, { address: 'a@b.example', args: { 'X-FOO': 'bar' } })).toEqual({
      ok: false,
      refusal: { reason: 'unknown-parameter', code: 555, text: '5.5.4 Unsupported MAIL parameter X-FOO' },
    });
    const odd = checkMailFrom(AUTHED, { address: 'a@b.example', args: { [`X\u0000Y${'Z'.repeat(100)}`]: true } });
    expect(odd).toEqual({ ok: false, refusal: { reason: 'unknown-parameter', code: 555, text: `5.5.4 Unsupported MAIL parameter X?Y${'Z'.repeat(61)}` } });
  });

  test.each([
    ['@relay.example:user@dest.example', 'source-route', 'Source routes are not accepted'],
    ['user%dest.example@relay.example', 'percent-hack', 'The %-hack is not accepted'],
    ['dest.example!user@relay.example', 'bang-path', 'Bang paths are not accepted'],
    ['user@[192.0.2.1]', 'address-literal', 'Address literals are not accepted'],
    ['postmaster', 'missing-domain', 'The address must have a domain'],
    ['.user@dest.example', 'bad-local-part', 'Invalid local part'],
    ['user@localhost', 'bad-domain', 'Invalid domain'],
    [`${'a'.repeat(65)}@dest.example`, 'too-long', 'Address too long'],
  ])('a sender %s is refused with 553 5.1.7 (sender-%s)', (address, problem, message) => {
    expect(checkMailFrom(AUTHED, { address, args: false })).toEqual({ ok: false, refusal: { reason: `sender-${problem}`, code: 553, text: `5.1.7 ${message}` } });
  });

  test('a user limited to sender domains: 553 5.7.1 outside them, accepted inside (after normalisation)', () => {
    const facts: MailFacts = { ...AUTHED, user: { allowedSenderDomains: ['allowed.example'] } };
    expect(checkMailFrom(facts, { address: 'a@other.example', args: false })).toEqual({
      ok: false,
      refusal: { reason: 'sender-domain-not-allowed', code: 553, text: '5.7.1 Sender address not allowed for this user' },
    });
    expect(checkMailFrom(facts, { address: 'a@ALLOWED.example', args: false })).toEqual({ ok: true, sender: 'a@allowed.example' });
    // The null sender has no domain, so a limited user cannot use it.
    expect(checkMailFrom(facts, { address: '', args: false })).toMatchObject({ ok: false, refusal: { reason: 'sender-domain-not-allowed' } });
  });

  test('low disk space is its own refusal: 452 4.3.1', () => {
    expect(DISK_LOW).toEqual({ reason: 'disk-low', code: 452, text: '4.3.1 Insufficient system storage, try again later' });
  });
});

describe('RCPT TO rules', () => {
  const facts = (over: Partial<RcptFacts> = {}): RcptFacts => ({ authenticated: true, trusted: false, domains: new Set(), maxRecipientDomains: 2, ...over });

  test('accepts an authenticated client, normalising the address and keeping DSN parameters', () => {
    expect(checkRcptTo(facts(), { address: 'Patient@Dest.EXAMPLE', args: false })).toEqual({ ok: true, recipient: { address: 'Patient@dest.example' }, domain: 'dest.example' });
    expect(
      checkRcptTo(facts(), { address: 'p@dest.example', args: { NOTIFY: 'FAILURE,DELAY', ORCPT: 'rfc822;p@dest.example' }, dsn: { notify: ['FAILURE', 'DELAY'], orcpt: 'rfc822;p@dest.example' } }),
    ).toEqual({
      ok: true,
      recipient: { address: 'p@dest.example', notify: ['FAILURE', 'DELAY'], orcpt: 'rfc822;p@dest.example' },
      domain: 'dest.example',
    });
  });

  test('a client from a trusted network may relay without AUTH', () => {
    expect(checkRcptTo(facts({ authenticated: false, trusted: true }), { address: 'p@dest.example', args: false })).toMatchObject({ ok: true, domain: 'dest.example' });
  });

  test('never an open relay: neither authenticated nor trusted is 554 5.7.1', () => {
    expect(checkRcptTo(facts({ authenticated: false, trusted: false }), { address: 'p@dest.example', args: false })).toEqual({
      ok: false,
      refusal: { reason: 'relay-denied-untrusted-unauthenticated', code: 554, text: '5.7.1 Relay access denied' },
    });
  });

  test('an unknown parameter: 555 5.5.4 (checked first)', () => {
    expect(checkRcptTo(facts({ authenticated: false }), { address: 'bad', args: { XRCPT: 'x' } })).toEqual({
      ok: false,
      refusal: { reason: 'unknown-parameter', code: 555, text: '5.5.4 Unsupported RCPT parameter XRCPT' },
    });
  });

  test.each([
    ['', 'empty', 'An empty address is not allowed here'],
    ['@relay.example:user@dest.example', 'source-route', 'Source routes are not accepted'],
    ['user%dest.example@relay.example', 'percent-hack', 'The %-hack is not accepted'],
    ['dest.example!user@relay.example', 'bang-path', 'Bang paths are not accepted'],
    ['user@[IPv6:2001:db8::1]', 'address-literal', 'Address literals are not accepted'],
    ['user@', 'missing-domain', 'The address must have a domain'],
    ['us..er@dest.example', 'bad-local-part', 'Invalid local part'],
    ['user@dest..example', 'bad-domain', 'Invalid domain'],
    [`user@${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(60)}.example`, 'too-long', 'Address too long'],
  ])('a recipient %s is refused with 553 5.1.3 (recipient-%s), before the relay check', (address, problem, message) => {
    expect(checkRcptTo(facts({ authenticated: false }), { address, args: false })).toEqual({ ok: false, refusal: { reason: `recipient-${problem}`, code: 553, text: `5.1.3 ${message}` } });
  });

  test('the recipient domain cap: a new domain past limits.maxRecipientDomains is 452 4.5.3, a known one is fine', () => {
    const full = facts({ domains: new Set(['a.example', 'b.example']) });
    expect(checkRcptTo(full, { address: 'p@c.example', args: false })).toEqual({ ok: false, refusal: { reason: 'too-many-domains', code: 452, text: '4.5.3 Too many recipient domains' } });
    expect(checkRcptTo(full, { address: 'q@B.example', args: false })).toEqual({ ok: true, recipient: { address: 'q@b.example' }, domain: 'b.example' });
    expect(checkRcptTo(facts({ domains: new Set(['a.example']) }), { address: 'p@c.example', args: false })).toMatchObject({ ok: true });
  });

  test('relay refusal comes before the domain cap', () => {
    expect(checkRcptTo(facts({ authenticated: false, domains: new Set(['a.example', 'b.example']) }), { address: 'p@c.example', args: false })).toMatchObject({
      ok: false,
      refusal: { reason: 'relay-denied-untrusted-unauthenticated' },
    });
  });
});

describe('source routes in the raw MAIL/RCPT line', () => {
  test('553 5.1.3 for a source route, nothing otherwise', () => {
    const refusal = { reason: 'source-route', code: 553, text: '5.1.3 Source routes are not accepted' };
    expect(sourceRouteRefusal('RCPT TO:<@relay.example:user@dest.example>')).toEqual(refusal);
    expect(sourceRouteRefusal('MAIL FROM: <@relay.example:user@dest.example> SIZE=10')).toEqual(refusal);
    expect(sourceRouteRefusal('RCPT TO:<user@dest.example>')).toBeNull();
    expect(sourceRouteRefusal('MAIL FROM:<>')).toBeNull();
  });
});

describe('REQUIRETLS in the raw MAIL line (RFC 8689)', () => {
  const refusal = { reason: 'requiretls-without-tls', code: 530, text: '5.7.10 REQUIRETLS needs a TLS session: issue STARTTLS first' };

  test('plaintext: 530 5.7.10, whatever the case, position or other parameters', () => {
    for (const line of [
      'MAIL FROM:<a@sender.example> REQUIRETLS',
      'mail from: <a@sender.example> SIZE=10 requiretls BODY=8BITMIME',
      'MAIL FROM:<> REQUIRETLS',
      'MAIL FROM:a@sender.example REQUIRETLS',
    ]) {
      expect(requireTlsParameterRefusal(line, false)).toEqual(refusal);
    }
  });

  test('over TLS, or without the parameter, or on RCPT: nothing to refuse', () => {
    expect(requireTlsParameterRefusal('MAIL FROM:<a@sender.example> REQUIRETLS', true)).toBeNull();
    expect(requireTlsParameterRefusal('MAIL FROM:<a@sender.example> SIZE=10', false)).toBeNull();
    expect(requireTlsParameterRefusal('RCPT TO:<a@dest.example> REQUIRETLS', false)).toBeNull();
  });

  test('the path is skipped as a unit: a quoted local part or a parameter value naming REQUIRETLS is not the parameter', () => {
    expect(mailParameterNames('MAIL FROM:<"x> REQUIRETLS"@sender.example> SIZE=1')).toEqual(['SIZE']);
    expect(mailParameterNames('MAIL FROM:<a@sender.example> ENVID=a>REQUIRETLS RET=HDRS')).toEqual(['ENVID', 'RET']);
    expect(mailParameterNames('MAIL FROM:<a@sender.example>')).toEqual([]);
    expect(mailParameterNames('EHLO REQUIRETLS')).toEqual([]);
  });
});
