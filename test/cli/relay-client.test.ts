import { parseConfig } from '../../src/config/load';
import { adminBaseUrl, configDriftWarning } from '../../src/cli/relay-client';

const config = (admin: Record<string, unknown>) => parseConfig({ listeners: [{ name: 'smtp', port: 0, tls: 'starttls', auth: 'required' }], admin }, {}, '/tmp').admin;

test('the CLI finds the admin API where the config puts it, never on port 0 or when it is off', () => {
  expect(adminBaseUrl(config({}))).toBe('http://127.0.0.1:8025');
  expect(adminBaseUrl(config({ host: '0.0.0.0', port: 9000, tokens: [{ name: 'a', token: 'x'.repeat(16) }] }))).toBe('http://127.0.0.1:9000');
  expect(adminBaseUrl(config({ host: '::1', port: 9000 }))).toBe('http://[::1]:9000');
  expect(adminBaseUrl(config({ port: 0 }))).toBeUndefined();
  expect(adminBaseUrl(config({ enabled: false }))).toBeUndefined();
});

test('a warning only when a relay answers with another digest', () => {
  const loaded = { file: '/etc/sealgate.yaml', digest: 'sha256:aaaaaaaaaaaaaaaaaaaa', config: {} as never };
  const relay = { url: 'http://127.0.0.1:8025', version: '0.1.0', loadedAt: '2026-11-29T10:00:00.000Z' };
  expect(configDriftWarning(loaded, undefined)).toBeUndefined();
  expect(configDriftWarning(loaded, { ...relay, digest: loaded.digest })).toBeUndefined();
  expect(configDriftWarning(loaded, { ...relay, digest: null })).toBeUndefined();
  expect(configDriftWarning(loaded, { ...relay, digest: 'sha256:bbbbbbbbbbbbbbbbbbbb' })).toBe(
    'warning: /etc/sealgate.yaml differs from the configuration the running relay uses (relay at http://127.0.0.1:8025 runs sha256:bbbbbbbbbbbb, loaded 2026-11-29T10:00:00.000Z; the file is sha256:aaaaaaaaaaaa): what this command reads from the file is not in force until `sealgate reload`',
  );
});
