import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { parseConfig } from '../../src/config/load';
import { CertificateError, loadOrCreateInboundCertificate } from '../../src/inbound/dev-certificate';
import { silentLogger } from '../../src/log/logger';

const listeners = [{ name: 'sub', port: 0, tls: 'starttls', auth: 'required' }];

describe('inbound certificate', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-cert-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('generates a development certificate beside the queue, warns, and reuses it', async () => {
    const config = parseConfig({ hostname: 'relay.test', queue: { path: 'queue' }, listeners }, {}, dir);
    const lines: Array<{ level: number; msg: string }> = [];
    const logger = pino(
      { level: 'info' },
      new Writable({
        write(chunk: Buffer, _e, cb) {
          lines.push(JSON.parse(chunk.toString()) as { level: number; msg: string });
          cb();
        },
      }),
    );
    const first = await loadOrCreateInboundCertificate(config, logger);
    expect(first.source).toBe('development');
    const x509 = new X509Certificate(first.cert);
    expect(x509.checkHost('relay.test')).toBe('relay.test');
    expect(x509.checkHost('localhost')).toBe('localhost');
    expect(x509.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(x509.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    const keyFile = path.join(dir, 'queue', 'dev-tls', 'key.pem');
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(lines.some((l) => l.level === 40 && /DEVELOPMENT/.test(l.msg))).toBe(true);

    const second = await loadOrCreateInboundCertificate(config, silentLogger());
    expect(second.cert).toBe(first.cert);
    expect(second.key).toBe(readFileSync(keyFile, 'utf8'));

    // A different hostname gets a new certificate.
    const renamed = parseConfig({ hostname: 'other.test', queue: { path: 'queue' }, listeners }, {}, dir);
    const third = await loadOrCreateInboundCertificate(renamed, silentLogger());
    expect(new X509Certificate(third.cert).checkHost('other.test')).toBe('other.test');
  });

  test('uses the configured certificate and explains an unreadable one', async () => {
    const generated = await loadOrCreateInboundCertificate(parseConfig({ queue: { path: 'queue' }, listeners }, {}, dir), silentLogger());
    writeFileSync(path.join(dir, 'cert.pem'), generated.cert);
    writeFileSync(path.join(dir, 'key.pem'), generated.key);
    const configured = parseConfig({ tls: { cert: 'cert.pem', key: 'key.pem' }, listeners }, {}, dir);
    await expect(loadOrCreateInboundCertificate(configured, silentLogger())).resolves.toMatchObject({ source: 'configured', cert: generated.cert });

    const missing = parseConfig({ tls: { cert: 'nope.pem', key: 'key.pem' }, listeners }, {}, dir);
    await expect(loadOrCreateInboundCertificate(missing, silentLogger())).rejects.toThrow(CertificateError);
    await expect(loadOrCreateInboundCertificate(missing, silentLogger())).rejects.toThrow(/tls\.cert.*nope\.pem/);
    writeFileSync(path.join(dir, 'bad.pem'), 'garbage');
    const bad = parseConfig({ tls: { cert: 'cert.pem', key: 'bad.pem' }, listeners }, {}, dir);
    await expect(loadOrCreateInboundCertificate(bad, silentLogger())).rejects.toThrow(/tls\.key/);
  });
});
