import { createHash, X509Certificate } from 'node:crypto';
import net from 'node:net';
import { probeExitCode, probeMx } from '../../src/outbound/check';
import { leafCertificate, startWorld, type World } from '../support/world';
import { worldPolicyRuntime } from './world-policy';

/** `sealgate check --mx HOST[:PORT] DOMAIN` logic against MX hosts of the test world on loopback (real DNS, SMTP, TLS). */
describe('probeMx against the test world', () => {
  let world: World;

  beforeAll(async () => {
    world = await startWorld({
      'tls13.test': { mx: [{ host: 'mx1.tls13.test', tls: 'tls13' }] },
      'tls11.test': { mx: [{ host: 'mx1.tls11.test', tls: 'tls11' }] },
      'chacha.test': { mx: [{ host: 'mx1.chacha.test', tls: 'chacha20' }] },
      'wrongname.test': { mx: [{ host: 'mx1.wrongname.test', tls: 'wrong-name' }] },
      'sts.test': { mx: [{ host: 'mx1.sts.test', tls: 'tls13' }], mtaSts: { mode: 'enforce', mx: ['mx1.sts.test'] } },
    });
  }, 60_000);
  afterAll(() => world?.stop());

  function runtime(extra: Record<string, unknown> = {}) {
    return worldPolicyRuntime(world, extra);
  }

  const colonHex = /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/;

  test('a good TLS 1.3 MX: EHLO before and after STARTTLS, the chain with SANs, key, fingerprints, the group, verified, compliant', async () => {
    const report = await probeMx({ host: 'mx1.tls13.test', port: world.smtpPort }, 'tls13.test', runtime());
    expect(report).toMatchObject({
      domain: 'tls13.test',
      host: 'mx1.tls13.test',
      port: world.smtpPort,
      policy: { level: 'encrypt', source: 'default' },
      addresses: [world.addressOf('mx1.tls13.test')],
      address: world.addressOf('mx1.tls13.test'),
      starttls: true,
      tls: { protocol: 'TLSv1.3', cipher: expect.stringMatching(/^TLS_AES_(128|256)_GCM/), group: expect.stringMatching(/^(P-|X25519)/) },
      verified: true,
      verifyError: null,
      nameMatch: true,
      profile: { compliant: true, problems: [] },
      compliant: true,
      classification: null,
      code: 'compliant',
      offered: null,
    });
    expect(report.ehlo.beforeTls).toContain('STARTTLS');
    expect(report.ehlo.afterTls).not.toContain('STARTTLS');
    expect(report.ehlo.afterTls!.length).toBeGreaterThan(0);

    const served = new X509Certificate((await leafCertificate('valid', 'mx1.tls13.test')).cert);
    const leaf = report.chain[0]!;
    expect(leaf).toMatchObject({ subject: expect.stringContaining('CN=mx1.tls13.test'), keyType: 'ec', keyBits: 256, curve: 'prime256v1', validTo: expect.any(String) });
    expect(leaf.san).toContain('DNS:mx1.tls13.test');
    expect(leaf.sha256).toBe(served.fingerprint256);
    expect(leaf.spkiSha256).toMatch(colonHex);
    expect(leaf.spkiSha256.replace(/:/g, '').toLowerCase()).toBe(
      createHash('sha256')
        .update(served.publicKey.export({ type: 'spki', format: 'der' }))
        .digest('hex'),
    );
    expect(probeExitCode(report)).toBe(0);
  });

  test('a TLS 1.1-only MX: the failed handshake, and what a permissive client gets (version, chain)', async () => {
    const report = await probeMx({ host: 'mx1.tls11.test', port: world.smtpPort }, 'tls11.test', runtime());
    expect(report).toMatchObject({ compliant: false, classification: 'non-compliant', code: 'tls-handshake-failed', starttls: true, offered: { protocol: 'TLSv1.1' } });
    expect(report.reason).toMatch(/TLSv1\.1/);
    expect(report.tls).toMatchObject({ protocol: 'TLSv1.1' });
    expect(report.profile).toBeNull();
    expect(report.ehlo.beforeTls).toContain('STARTTLS');
    expect(report.chain[0]?.subject).toContain('mx1.tls11.test');
    // Judged against the relay's trust store (the test CA), as delivery would judge it.
    expect(report).toMatchObject({ verified: true, nameMatch: true });
    expect(probeExitCode(report)).toBe(3);
  });

  test('a weak-suite MX (ChaCha20 only): not in the NIST profile, with the suite it offers', async () => {
    const report = await probeMx({ host: 'mx1.chacha.test', port: world.smtpPort }, 'chacha.test', runtime());
    expect(report.compliant).toBe(false);
    expect(report.classification).toBe('non-compliant');
    expect(`${report.offered?.cipher ?? ''} ${report.profile?.problems.join(' ') ?? ''}`).toMatch(/CHACHA20/);
    expect(report.chain.length).toBeGreaterThanOrEqual(1);
  });

  test("the domain's policy applies: level verify refuses a certificate for another name, the chain still shown", async () => {
    const encrypt = await probeMx({ host: 'mx1.wrongname.test', port: world.smtpPort }, 'wrongname.test', runtime());
    expect(encrypt).toMatchObject({ compliant: true, nameMatch: false, verified: true, requireValidCert: false });
    const verify = await probeMx({ host: 'mx1.wrongname.test', port: world.smtpPort }, 'wrongname.test', runtime({ domains: { 'wrongname.test': { level: 'verify' } } }));
    expect(verify).toMatchObject({ compliant: false, classification: 'non-compliant', code: 'certificate-name-mismatch', requireValidCert: true, policy: { level: 'verify', source: 'domain-rule' } });
    expect(verify.chain[0]!.san.join(' ')).not.toContain('mx1.wrongname.test');
  });

  test('an MTA-STS enforce policy: a host outside its mx patterns is refused even with good TLS', async () => {
    const inPolicy = await probeMx({ host: 'mx1.sts.test', port: world.smtpPort }, 'sts.test', runtime());
    expect(inPolicy).toMatchObject({ compliant: true, stsMatch: true, requireValidCert: true, policy: { source: 'mta-sts', mode: 'enforce' } });
    const outside = await probeMx({ host: 'mx1.tls13.test', port: world.smtpPort }, 'sts.test', runtime());
    expect(outside).toMatchObject({ compliant: false, stsMatch: false, code: 'mx-not-in-policy', tls: { protocol: 'TLSv1.3' } });
  });

  test('an unreachable port: a clear transient error, no TLS facts', async () => {
    // A port just freed on the MX's own address: nothing listens there.
    const address = world.addressOf('mx1.tls13.test');
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, address, resolve));
    const port = (server.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const report = await probeMx({ host: address, port }, 'tls13.test', runtime());
    expect(report).toMatchObject({ host: address, addresses: [address], compliant: false, classification: 'transient', tls: null, chain: [], starttls: null });
    expect(report.reason).toMatch(/ECONNREFUSED|refused/i);
    expect(probeExitCode(report)).toBe(4);
  });

  test('a host name that does not exist: the lookup failure, permanent', async () => {
    const report = await probeMx({ host: 'mx9.nowhere.test', port: world.smtpPort }, 'tls13.test', runtime());
    expect(report).toMatchObject({ compliant: false, classification: 'permanent', code: 'address-lookup-failed', addresses: [], address: null });
    expect(report.reason).toMatch(/mx9\.nowhere\.test/);
    expect(probeExitCode(report)).toBe(5);
  });
});
