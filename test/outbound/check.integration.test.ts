import { checkDomain, type CheckReport, type MxReport } from '../../src/outbound/check';
import { memoryPolicyCache, type PolicyCache } from '../../src/policy';
import { standardScenarios, startWorld, type World } from '../support/world';
import { worldPolicyRuntime } from './world-policy';

/** `sealgate check` logic against the test world: real DNS, real SMTP servers, real TLS, real HTTPS. */
describe('checkDomain against the test world', () => {
  let world: World;

  beforeAll(async () => {
    world = await startWorld({
      ...standardScenarios(),
      'sts-cached.test': {
        mx: [{ host: 'mx1.sts-cached.test', tls: 'tls13' }],
        mtaSts: { mode: 'enforce', mx: ['mx1.sts-cached.test'], id: 'one' },
      },
      'sts-testing-ok.test': {
        mx: [{ host: 'mx1.sts-testing-ok.test', tls: 'tls13' }],
        mtaSts: { mode: 'testing', mx: ['*.sts-testing-ok.test'] },
      },
    });
  }, 60_000);
  afterAll(() => world?.stop());

  function runtime(extra: Record<string, unknown> = {}, cache?: PolicyCache) {
    return worldPolicyRuntime(world, extra, cache);
  }

  const check = (domain: string, extra?: Record<string, unknown>) => checkDomain(domain, runtime(extra));
  const only = (report: CheckReport): MxReport => {
    expect(report.mx).toHaveLength(1);
    return report.mx[0]!;
  };

  it('TLS 1.3 with a valid certificate: deliver', async () => {
    const report = await check('tls13.test');
    expect(report).toMatchObject({ verdict: 'deliver', via: 'mx1.tls13.test', policy: { source: 'default', level: 'encrypt' } });
    expect(only(report)).toMatchObject({
      host: 'mx1.tls13.test',
      addresses: [world.addressOf('mx1.tls13.test')],
      starttls: true,
      tls: { protocol: 'TLSv1.3', cipher: expect.stringMatching(/^TLS_AES_(128|256)_GCM/), group: expect.stringMatching(/^P-/) },
      certificate: { trusted: true, nameMatch: true, subject: expect.stringContaining('mx1.tls13.test'), validTo: expect.any(String) },
      stsMatch: null,
      compliant: true,
    });
    expect(report.mtaSts).toEqual({ record: null, policy: null, source: null, error: null });
  });

  it('TLS 1.2 with an AES-GCM suite: deliver', async () => {
    const report = await check('tls12.test');
    expect(report.verdict).toBe('deliver');
    expect(only(report).tls).toMatchObject({ protocol: 'TLSv1.2', cipher: expect.stringMatching(/^TLS_ECDHE_ECDSA_WITH_AES_\d+_GCM/) });
  });

  it('TLS 1.1 only: divert, with what the server offers as evidence', async () => {
    const report = await check('tls11.test');
    expect(report).toMatchObject({ verdict: 'divert', code: 'tls-handshake-failed' });
    expect(only(report)).toMatchObject({ starttls: true, compliant: false, classification: 'non-compliant', code: 'tls-handshake-failed', tls: null, offered: { protocol: 'TLSv1.1' } });
  });

  it('no STARTTLS: divert', async () => {
    const report = await check('nostarttls.test');
    expect(report.verdict).toBe('divert');
    expect(only(report)).toMatchObject({ starttls: false, tls: null, classification: 'non-compliant', code: 'starttls-not-offered' });
  });

  it('ChaCha20 only: divert', async () => {
    const report = await check('chacha.test');
    expect(report.verdict).toBe('divert');
    expect(only(report)).toMatchObject({ starttls: true, classification: 'non-compliant', code: 'tls-handshake-failed', offered: { cipher: expect.stringMatching(/CHACHA20/) } });
  });

  it('self-signed certificate: deliver at level encrypt (recorded), divert at level verify', async () => {
    const encrypt = await check('selfsigned.test');
    expect(encrypt.verdict).toBe('deliver');
    expect(only(encrypt).certificate).toMatchObject({ trusted: false, nameMatch: true });
    const verify = await check('selfsigned.test', { domains: { 'selfsigned.test': { level: 'verify' } } });
    expect(verify).toMatchObject({ verdict: 'divert', policy: { source: 'domain-rule', level: 'verify' } });
    expect(only(verify)).toMatchObject({ compliant: false, code: 'certificate-untrusted' });
  });

  it('certificate for another name: deliver at level encrypt, divert at level verify (also as the global default)', async () => {
    const encrypt = await check('wrongname.test');
    expect(encrypt.verdict).toBe('deliver');
    expect(only(encrypt).certificate).toMatchObject({ trusted: true, nameMatch: false });
    const verify = await check('wrongname.test', { outbound: { ...world.relayConfig().outbound, defaultLevel: 'verify' } });
    expect(verify.verdict).toBe('divert');
    expect(only(verify)).toMatchObject({ code: 'certificate-name-mismatch' });
  });

  it('expired certificate: deliver at level encrypt with the expiry recorded', async () => {
    const report = await check('expired.test');
    expect(report.verdict).toBe('deliver');
    expect(only(report).certificate).toMatchObject({ trusted: false, nameMatch: true, error: 'CERT_HAS_EXPIRED' });
  });

  it('RSA 1024 certificate: divert (outside the profile at any level)', async () => {
    const report = await check('weakrsa.test');
    expect(report.verdict).toBe('divert');
    expect(only(report)).toMatchObject({ compliant: false, code: 'tls-profile', reason: expect.stringMatching(/RSA key of 1024 bits/) });
  });

  it('MTA-STS enforce with a matching MX and a valid certificate: deliver', async () => {
    const report = await check('sts-enforce.test');
    expect(report).toMatchObject({
      verdict: 'deliver',
      policy: { source: 'mta-sts', mode: 'enforce', id: '20261127T000000' },
      mtaSts: { record: { id: '20261127T000000' }, policy: { mode: 'enforce', mx: ['*.sts-enforce.test'], maxAge: 86400 }, source: 'fetched', error: null },
    });
    expect(only(report)).toMatchObject({ stsMatch: true, compliant: true });
  });

  it('MTA-STS enforce with a self-signed MX certificate: divert', async () => {
    const report = await check('sts-badcert.test');
    expect(report.verdict).toBe('divert');
    expect(only(report)).toMatchObject({ stsMatch: true, compliant: false, code: 'certificate-untrusted' });
  });

  it('MTA-STS enforce whose mx does not match: divert, the MX still probed for evidence', async () => {
    const report = await check('sts-mismatch.test');
    expect(report).toMatchObject({ verdict: 'divert', code: 'mta-sts-no-matching-mx' });
    expect(only(report)).toMatchObject({ stsMatch: false, compliant: false, code: 'mx-not-in-policy', tls: { protocol: 'TLSv1.3' } });
  });

  it('MTA-STS testing: deliver as without a policy, listing what enforce would have refused', async () => {
    const report = await check('sts-testing.test');
    expect(report).toMatchObject({ verdict: 'deliver', policy: { source: 'mta-sts', mode: 'testing' } });
    expect(only(report)).toMatchObject({ stsMatch: false, compliant: true });
    expect(report.wouldFail.map((f) => f.reason).sort()).toEqual(['certificate-untrusted', 'mx-not-in-policy']);
    const clean = await check('sts-testing-ok.test');
    expect(clean).toMatchObject({ verdict: 'deliver', wouldFail: [] });
  });

  it('MTA-STS none: deliver, no policy in force', async () => {
    const report = await check('sts-none.test');
    expect(report).toMatchObject({ verdict: 'deliver', policy: { source: 'default', mode: 'none' }, mtaSts: { policy: { mode: 'none' }, source: 'fetched' } });
    expect(only(report).stsMatch).toBeNull();
  });

  it('a failed refetch keeps the cached policy', async () => {
    const cache = memoryPolicyCache();
    const first = await checkDomain('sts-cached.test', runtime({}, cache));
    expect(first.mtaSts).toMatchObject({ record: { id: 'one' }, source: 'fetched' });
    world.dns.set('_mta-sts.sts-cached.test', 'TXT', ['v=STSv1; id=two']);
    world.mtaSts.set('sts-cached.test', { status: 500 });
    const second = await checkDomain('sts-cached.test', runtime({}, cache));
    expect(second).toMatchObject({
      verdict: 'deliver',
      policy: { source: 'mta-sts', mode: 'enforce', id: 'one' },
      mtaSts: { record: { id: 'two' }, policy: { mode: 'enforce', mx: ['mx1.sts-cached.test'] }, source: 'cache', error: expect.stringMatching(/HTTP 500/) },
    });
    expect(only(second)).toMatchObject({ stsMatch: true, compliant: true });
  });

  it('a policy fetch with a bad certificate is no policy when nothing is cached', async () => {
    world.mtaSts.set('tls13.test', { policy: { mode: 'enforce', mx: ['nothing.test'], maxAge: 600 }, certificate: 'self-signed' });
    world.dns.set('_mta-sts.tls13.test', 'TXT', ['v=STSv1; id=x1']);
    try {
      const report = await check('tls13.test');
      expect(report).toMatchObject({ verdict: 'deliver', mtaSts: { record: { id: 'x1' }, policy: null, error: expect.stringMatching(/mta-sts\.tls13\.test/) } });
    } finally {
      world.dns.set('_mta-sts.tls13.test', 'TXT', []);
      world.mtaSts.remove('tls13.test');
    }
  });

  it('second MX when the first has no STARTTLS: deliver via the second', async () => {
    const report = await check('secondmx.test');
    expect(report).toMatchObject({ verdict: 'deliver', via: 'mx2.secondmx.test' });
    expect(report.mx.map((m) => [m.host, m.starttls, m.compliant])).toEqual([
      ['mx1.secondmx.test', false, false],
      ['mx2.secondmx.test', true, true],
    ]);
  });

  it('a non-compliant MX and another whose address lookup fails temporarily: defer, not divert', async () => {
    world.dns.fail('mx2.secondmx.test', 'servfail');
    try {
      const report = await check('secondmx.test');
      expect(report).toMatchObject({ verdict: 'defer', code: 'mx-address-lookup-temporary' });
      expect(report.mx.map((m) => [m.host, m.classification, m.code])).toEqual([
        ['mx1.secondmx.test', 'non-compliant', 'starttls-not-offered'],
        ['mx2.secondmx.test', 'transient', 'address-lookup-temporary'],
      ]);
    } finally {
      world.dns.fail('mx2.secondmx.test', null);
    }
  });

  it('null MX: bounce with 5.1.10 and no connection', async () => {
    const report = await check('nullmx.test');
    expect(report).toMatchObject({ verdict: 'bounce', code: 'null-mx', mx: [] });
  });

  it('implicit MX: deliver to the domain itself', async () => {
    const report = await check('implicitmx.test');
    expect(report).toMatchObject({ verdict: 'deliver', via: 'implicitmx.test' });
    expect(only(report)).toMatchObject({ preference: 0, compliant: true });
  });

  it('SERVFAIL: defer', async () => {
    const report = await check('servfail.test');
    expect(report).toMatchObject({ verdict: 'defer', code: 'dns-temporary', mx: [] });
  });

  it('NXDOMAIN: bounce', async () => {
    expect(await check('does-not-exist.test')).toMatchObject({ verdict: 'bounce', code: 'nxdomain' });
  });

  it('portal level: divert', async () => {
    expect(await check('tls13.test', { domains: { 'tls13.test': { level: 'portal' } } })).toMatchObject({ verdict: 'divert', code: 'portal-level' });
  });
});
