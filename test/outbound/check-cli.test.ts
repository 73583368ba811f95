import { relayFixture, runCli, type RelayFixture } from '../support/relay-process';
import { startWorld, type World } from '../support/world';

/** `sealgate check` as a user runs it: a spawned CLI with a config file aimed at the test world. */
describe('sealgate check (spawned CLI)', () => {
  let world: World;
  let fixture: RelayFixture;

  beforeAll(async () => {
    world = await startWorld({
      'tls13.test': { mx: [{ host: 'mx1.tls13.test', tls: 'tls13' }], mtaSts: { mode: 'enforce', mx: ['mx1.tls13.test'] } },
      'nostarttls.test': { mx: [{ host: 'mx1.nostarttls.test', tls: 'none' }] },
      'tls11.test': { mx: [{ host: 'mx1.tls11.test', tls: 'tls11' }] },
      'nullmx.test': { nullMx: true },
      'servfail.test': { mx: [{ host: 'mx1.servfail.test', tls: 'tls13' }], dnsFailure: 'servfail' },
    });
    const relay = world.relayConfig();
    fixture = relayFixture({ ...relay, dns: { ...relay.dns, timeout: '1s', tries: 1 } });
  }, 60_000);
  afterAll(async () => {
    fixture?.remove();
    await world?.stop();
  });

  const check = (...args: string[]) => runCli(['--config', fixture.configFile, 'check', ...args], { timeoutMs: 30_000 });

  it('--json prints one JSON document with the stable names, and exits 0 for deliver', async () => {
    const { code, stdout, stderr } = await check('tls13.test', '--json');
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as Record<string, unknown>;
    expect(report).toMatchObject({
      domain: 'tls13.test',
      verdict: 'deliver',
      reason: expect.any(String),
      mtaSts: { record: { id: expect.any(String) }, policy: { mode: 'enforce', mx: ['mx1.tls13.test'], maxAge: 86400 }, source: 'fetched', error: null },
      mx: [
        {
          host: 'mx1.tls13.test',
          preference: 10,
          addresses: [world.addressOf('mx1.tls13.test')],
          starttls: true,
          tls: { protocol: 'TLSv1.3', cipher: expect.any(String), group: expect.any(String) },
          certificate: { subject: expect.any(String), issuer: expect.any(String), validTo: expect.any(String), trusted: true, nameMatch: true },
          stsMatch: true,
          compliant: true,
          reason: expect.any(String),
        },
      ],
    });
  }, 40_000);

  it('exits 3 for divert, 4 for defer and 5 for bounce, with readable text by default', async () => {
    const divert = await check('nostarttls.test');
    expect(divert.code).toBe(3);
    expect(divert.stdout).toMatch(/Verdict:\s+DIVERT/);
    expect(divert.stdout).toMatch(/STARTTLS not offered/);

    const defer = await check('servfail.test', '--json');
    expect(defer.code).toBe(4);
    expect(JSON.parse(defer.stdout)).toMatchObject({ verdict: 'defer', mx: [] });

    const bounce = await check('NullMX.test.');
    expect(bounce.code).toBe(5);
    expect(bounce.stdout).toMatch(/Verdict:\s+BOUNCE/);
    expect(bounce.stdout).toMatch(/null MX/);
  }, 90_000);

  it('refuses something that is not a domain name', async () => {
    const { code, stderr } = await check('not a domain');
    expect(code).toBe(2);
    expect(stderr).toMatch(/not a domain name/);
  }, 40_000);

  it("--mx probes one host under the domain's policy: text shows EHLO, TLS, group, profile and the chain; exit 0", async () => {
    const { code, stdout, stderr } = await check('--mx', `mx1.tls13.test:${world.smtpPort}`, 'tls13.test');
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/Domain:\s+tls13\.test \(level encrypt, source mta-sts, MTA-STS enforce/);
    expect(stdout).toContain(`Host:     mx1.tls13.test port ${world.smtpPort} [${world.addressOf('mx1.tls13.test')}]`);
    expect(stdout).toMatch(/Verdict:\s+OK \(compliant\)/);
    expect(stdout).toMatch(/EHLO:\s+.*STARTTLS/);
    expect(stdout).toMatch(/TLS:\s+TLSv1\.3 TLS_AES_\S+ group (P-\d+|X25519)/);
    expect(stdout).toMatch(/Profile:\s+NIST SP 800-52r2 compliant/);
    expect(stdout).toMatch(/Chain:\s+verified; name matches mx1\.tls13\.test/);
    expect(stdout).toMatch(/SAN\s+DNS:mx1\.tls13\.test/);
    expect(stdout).toMatch(/key\s+ec 256 bits \(prime256v1\)/);
    expect(stdout).toMatch(/sha256\s+([0-9A-F]{2}:){31}[0-9A-F]{2}/);
    expect(stdout).toMatch(/spki\s+([0-9A-F]{2}:){31}[0-9A-F]{2}/);
  }, 40_000);

  it('--mx --json: the report as JSON; a TLS 1.1-only host exits 3 with the failure, an unreachable port exits 4, a bad target 2', async () => {
    const weak = await check('--mx', `mx1.tls11.test:${world.smtpPort}`, 'tls11.test', '--json');
    expect(weak.code).toBe(3);
    expect(JSON.parse(weak.stdout)).toMatchObject({
      host: 'mx1.tls11.test',
      compliant: false,
      code: 'tls-handshake-failed',
      offered: { protocol: 'TLSv1.1' },
    });
    expect(JSON.parse(weak.stdout).chain[0]).toMatchObject({ subject: expect.stringContaining('mx1.tls11.test'), sha256: expect.any(String), spkiSha256: expect.any(String) });

    const closed = await check('--mx', 'mx1.tls13.test:1', 'tls13.test');
    expect(closed.code).toBe(4);
    expect(closed.stdout).toMatch(/Verdict:\s+TRANSIENT/);
    expect(closed.stdout).toMatch(/refused/i);

    const bad = await check('--mx', 'not a host', 'tls13.test');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--mx "not a host" is not a host name/);
  }, 60_000);
});
