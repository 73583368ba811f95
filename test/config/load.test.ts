import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_CONFIG_FILE, loadConfig, parseConfig } from '../../src/config/load';
import { parseDuration, parseSize } from '../../src/config/units';
import { configErrorOf } from './config-error';

const minimal = { listeners: [{ name: 'sub', port: 2587, tls: 'starttls', auth: 'required' }] };

describe('config loading', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-config-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('the shipped default config is valid and describes the three documented listeners', () => {
    const { config, file } = loadConfig(undefined, {});
    expect(file).toBe(DEFAULT_CONFIG_FILE);
    expect(config.queue.backend).toBe('lmdb');
    expect(config.queue.path).toBe(path.resolve(path.dirname(DEFAULT_CONFIG_FILE), '../queue'));
    expect(config.listeners.map((l) => [l.host, l.port, l.tls, l.auth, l.trustedNetworks])).toEqual([
      ['127.0.0.1', 2587, 'starttls', 'required', []],
      ['127.0.0.1', 2465, 'implicit', 'required', []],
      ['127.0.0.1', 2525, 'starttls', 'optional', ['127.0.0.0/8']],
    ]);
    expect(config.listeners.every((l) => l.requireTls)).toBe(true);
    expect(config.limits.maxMessageSize).toBe(50 * 1024 * 1024);
  });

  test('relative paths resolve against the config file folder, not the working directory', () => {
    const file = path.join(dir, 'relay.yaml');
    writeFileSync(file, 'queue: { path: spool }\nauth: { usersFile: u.json }\nlisteners: [{name: a, port: 1, tls: implicit, auth: required}]\n');
    const { config } = loadConfig(file, {});
    expect(config.queue.path).toBe(path.join(dir, 'spool'));
    expect(config.auth.usersFile).toBe(path.join(dir, 'u.json'));
  });

  test('an unknown key is named with its full path', () => {
    const message = configErrorOf(() => parseConfig({ ...minimal, limits: { maxMesageSize: 10 } }, {}, dir));
    expect(message).toContain('limits.maxMesageSize: unknown key');
  });

  test('a bad value names the key and what was expected', () => {
    const message = configErrorOf(() => parseConfig({ listeners: [{ name: 'x', port: 99999, tls: 'sometimes', auth: 'required', trustedNetworks: ['10.0.0.0/33'] }] }, {}, dir));
    expect(message).toMatch(/listeners\.0\.port: .*65535/);
    expect(message).toMatch(/listeners\.0\.tls: .*"starttls"\|"implicit"/);
    expect(message).toMatch(/listeners\.0\.trustedNetworks\.0: expected a CIDR/);
  });

  test('durations and sizes accept units and reject nonsense', () => {
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('24h')).toBe(86_400_000);
    expect(parseDuration('soon')).toBeUndefined();
    expect(parseSize('50MiB')).toBe(52_428_800);
    expect(parseSize('64k')).toBe(65_536);
    expect(parseSize('12 parsecs')).toBeUndefined();
    const message = configErrorOf(() => parseConfig({ ...minimal, limits: { socketTimeout: 'a while' } }, {}, dir));
    expect(message).toMatch(/limits\.socketTimeout: expected a duration/);
  });

  test('certificate and key must be set together', () => {
    const message = configErrorOf(() => parseConfig({ ...minimal, tls: { cert: 'c.pem' } }, {}, dir));
    expect(message).toMatch(/tls: set both tls.cert and tls.key/);
  });

  test('environment overrides select Redis, DNS servers and the log level', () => {
    const config = parseConfig(
      minimal,
      {
        SEALGATE_REDIS_URL: 'redis://127.0.0.1:6390/2',
        SEALGATE_DNS_SERVERS: '127.0.0.53:5353, 127.0.0.1',
        SEALGATE_LOG_LEVEL: 'debug',
      },
      dir,
    );
    expect(config.queue.backend).toBe('redis');
    expect(config.queue.redis.url).toBe('redis://127.0.0.1:6390/2');
    expect(config.dns.servers).toEqual(['127.0.0.53:5353', '127.0.0.1']);
    expect(config.log.level).toBe('debug');
  });

  test('a bad DNS server from the environment is reported against dns.servers', () => {
    const message = configErrorOf(() => parseConfig(minimal, { SEALGATE_DNS_SERVERS: 'resolver.example:53' }, dir));
    expect(message).toMatch(/dns\.servers\.0: expected "ip" or "ip:port"/);
  });

  test('SEALGATE_CONFIG picks the file when --config is absent', () => {
    const file = path.join(dir, 'env.yaml');
    writeFileSync(file, 'hostname: relay.example\nlisteners: [{name: a, port: 1, tls: implicit, auth: required}]\n');
    expect(loadConfig(undefined, { SEALGATE_CONFIG: file }).config.hostname).toBe('relay.example');
  });

  test('unreadable files and broken YAML give clear errors', () => {
    expect(configErrorOf(() => loadConfig(path.join(dir, 'missing.yaml'), {}))).toMatch(/cannot read config file/);
    const file = path.join(dir, 'broken.yaml');
    writeFileSync(file, 'listeners: [\n  - name: a\n hostname: x: y\n');
    expect(configErrorOf(() => loadConfig(file, {}))).toMatch(/is not valid YAML/);
  });
});
