import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { TLS12_STATIC_RSA_SUITES } from '../../src/policy/nist';
import { buildTlsProfile, checkNegotiated, defaultTlsProfile, tlsContextOptions, TlsProfileError, type TlsProfile } from '../../src/policy/tls-profile';
import { selfSignedCertificate } from '../support/certificates';

const base = { allowStaticRsa: false, minVersion: 'TLSv1.2' as const, minRsaBits: 2048, minDhBits: 2048, allowNonCompliantProfile: false };

describe('NIST SP 800-52r2 profile', () => {
  test('the default profile is compliant, TLS 1.2+, and excludes ChaCha20 and X25519', () => {
    const profile = defaultTlsProfile();
    expect(profile.nonCompliance).toEqual([]);
    const options = tlsContextOptions(profile);
    expect(options.minVersion).toBe('TLSv1.2');
    expect(options.ciphers).toContain('TLS_AES_256_GCM_SHA384');
    expect(options.ciphers).not.toMatch(/CHACHA/i);
    expect(options.ciphers).not.toMatch(/(^|:)AES\d+-/); // no static RSA by default
    expect(options.ecdhCurve).toBe('P-256:P-384:P-521:ffdhe2048:ffdhe3072:ffdhe4096:ffdhe6144:ffdhe8192');
    expect(options.ecdhCurve).not.toMatch(/X25519|X448/);
    expect(profile.allowedSuites.has('TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256')).toBe(true);
  });

  test('static-RSA suites are an opt-in that stays within the r2 list', () => {
    const profile = buildTlsProfile({ ...base, allowStaticRsa: true });
    expect(profile.nonCompliance).toEqual([]);
    for (const [, iana] of TLS12_STATIC_RSA_SUITES) expect(profile.allowedSuites.has(iana)).toBe(true);
  });

  test.each([
    [{ ciphers: ['TLS_CHACHA20_POLY1305_SHA256'] }, /tlsProfile\.ciphers: not SP 800-52r2 approved: TLS_CHACHA20_POLY1305_SHA256/],
    [{ groups: ['X25519', 'P-256'] }, /tlsProfile\.groups: .*X25519/],
    [{ minVersion: 'TLSv1.1' as const }, /tlsProfile\.minVersion: TLSv1\.1 is below TLSv1\.2/],
    [{ minRsaBits: 1024 }, /tlsProfile\.minRsaBits: 1024 is below 2048/],
    [{ ciphers: ['AES128-GCM-SHA256'] }, /not SP 800-52r2 approved: AES128-GCM-SHA256/],
  ])('a loosened profile %p is refused without allowNonCompliantProfile', (override, expected) => {
    expect(() => buildTlsProfile({ ...base, ...override })).toThrow(TlsProfileError);
    expect(() => buildTlsProfile({ ...base, ...override })).toThrow(expected);
    const allowed = buildTlsProfile({ ...base, ...override, allowNonCompliantProfile: true });
    expect(allowed.nonCompliance.join('\n')).toMatch(expected);
  });
});

describe('checking what was negotiated', () => {
  let server: tls.Server;
  let port: number;

  async function startServer(options: tls.TlsOptions): Promise<void> {
    const { key, cert } = await selfSignedCertificate('profile.test');
    server = tls.createServer({ key, cert, ...options }, (socket) => socket.end());
    server.on('tlsClientError', () => undefined);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  }

  async function connect(options: tls.ConnectionOptions): Promise<tls.TLSSocket> {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'profile.test', rejectUnauthorized: false, ...options });
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    return socket;
  }

  afterEach(async () => {
    server.close();
    await once(server, 'close');
  });

  test('a profile client against a permissive server gets an approved suite and a NIST group, never X25519', async () => {
    await startServer({});
    const profile = defaultTlsProfile();
    const socket = await connect(tlsContextOptions(profile));
    const result = checkNegotiated(socket, profile);
    socket.destroy();
    expect(result.problems).toEqual([]);
    expect(result.compliant).toBe(true);
    expect(result.negotiated.protocol).toBe('TLSv1.3');
    expect(result.negotiated.group).toBe('P-256');
    expect(profile.allowedSuites.has(result.negotiated.cipher ?? '')).toBe(true);
  });

  test('a default Node client negotiates X25519, which the check flags', async () => {
    await startServer({});
    const socket = await connect({});
    const result = checkNegotiated(socket, defaultTlsProfile());
    socket.destroy();
    expect(result.negotiated.group).toBe('X25519');
    expect(result.compliant).toBe(false);
    expect(result.problems.join()).toMatch(/key-exchange group X25519 is not in the profile/);
  });

  test('a ChaCha20-only TLS 1.3 server cannot complete a handshake with the profile', async () => {
    await startServer({ minVersion: 'TLSv1.3', ciphers: 'TLS_CHACHA20_POLY1305_SHA256' });
    await expect(connect(tlsContextOptions(defaultTlsProfile()))).rejects.toThrow();
  });

  test('a ChaCha20 TLS 1.2 session is judged non-compliant', async () => {
    await startServer({ maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-CHACHA20-POLY1305' });
    const socket = await connect({ maxVersion: 'TLSv1.2' });
    const result = checkNegotiated(socket, defaultTlsProfile());
    socket.destroy();
    expect(result.negotiated.protocol).toBe('TLSv1.2');
    expect(result.negotiated.cipher).toBe('TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256');
    expect(result.problems.join()).toMatch(/cipher suite .*CHACHA20.* is not in the profile/);
  });

  test('a TLS 1.2 AES-GCM server is compliant', async () => {
    await startServer({ maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' });
    const profile: TlsProfile = defaultTlsProfile();
    const socket = await connect(tlsContextOptions(profile));
    const result = checkNegotiated(socket, profile);
    socket.destroy();
    expect(result.negotiated).toMatchObject({ protocol: 'TLSv1.2', cipher: 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256', group: 'P-256' });
    expect(result.compliant).toBe(true);
  });

  test('a 1024-bit RSA server key is flagged even though the handshake completes without verification', async () => {
    const { key, cert } = await selfSignedCertificate('weak.test', 'rsa', 1024);
    server = tls.createServer({ key, cert, ciphers: 'DEFAULT@SECLEVEL=0' }, (socket) => socket.end());
    server.on('tlsClientError', () => undefined);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
    const profile = defaultTlsProfile();
    const socket = await connect(tlsContextOptions(profile));
    const result = checkNegotiated(socket, profile);
    socket.destroy();
    expect(result.negotiated.peerKey).toEqual({ type: 'RSA', bits: 1024 });
    expect(result.problems.join()).toMatch(/peer RSA key of 1024 bits is below 2048/);
  });
});
