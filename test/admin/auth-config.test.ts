import { isLoopbackHost, tokenMatcher } from '../../src/admin/auth';
import { parseAdminDuration } from '../../src/admin/durations';
import { assertAdminListenerSafe } from '../../src/admin/server';
import { ConfigError, parseConfig } from '../../src/config/load';

const base = { listeners: [{ name: 'smtp', port: 0, tls: 'starttls', auth: 'required' }] };

describe('admin config', () => {
  test('defaults: enabled on 127.0.0.1:8025 without tokens', () => {
    expect(parseConfig(base, {}, '/tmp').admin).toEqual({ enabled: true, host: '127.0.0.1', port: 8025, tokens: [], maxFailedAuthPerMinute: 10, metricsTopDomains: 10 });
  });

  test('SEALGATE_ADMIN_TOKEN adds a token named env next to configured ones', () => {
    const config = parseConfig({ ...base, admin: { tokens: [{ name: 'ops', token: 'x'.repeat(16) }] } }, { SEALGATE_ADMIN_TOKEN: 'y'.repeat(20) }, '/tmp');
    expect(config.admin.tokens).toEqual([
      { name: 'ops', token: 'x'.repeat(16) },
      { name: 'env', token: 'y'.repeat(20) },
    ]);
  });

  test('short tokens, bad ports and unknown keys are refused with the key named', () => {
    expect(() => parseConfig({ ...base, admin: { tokens: [{ name: 'ops', token: 'short' }] } }, {}, '/tmp')).toThrow(/admin\.tokens\.0\.token: admin tokens must be at least 16/);
    expect(() => parseConfig(base, { SEALGATE_ADMIN_TOKEN: 'short' }, '/tmp')).toThrow(ConfigError);
    expect(() => parseConfig({ ...base, admin: { port: 70000 } }, {}, '/tmp')).toThrow(/admin\.port/);
    expect(() => parseConfig({ ...base, admin: { bind: 'x' } }, {}, '/tmp')).toThrow(/admin\.bind: unknown key/);
  });

  test('a non-loopback listener needs a token', () => {
    expect(() => assertAdminListenerSafe({ host: '0.0.0.0', tokens: [] })).toThrow(/not a loopback address/);
    expect(() => assertAdminListenerSafe({ host: '::', tokens: [] })).toThrow(/not a loopback address/);
    expect(() => assertAdminListenerSafe({ host: '0.0.0.0', tokens: [{ name: 'ops', token: 'x'.repeat(16) }] })).not.toThrow();
    expect(() => assertAdminListenerSafe({ host: '127.0.0.1', tokens: [] })).not.toThrow();
  });
});

describe('admin auth helpers', () => {
  test('tokenMatcher finds the token name for a bearer header and nothing else', () => {
    const match = tokenMatcher([
      { name: 'ops', token: 'a'.repeat(16) },
      { name: 'portal', token: 'b'.repeat(24) },
    ]);
    expect(match(`Bearer ${'a'.repeat(16)}`)).toBe('ops');
    expect(match(`bearer ${'b'.repeat(24)}`)).toBe('portal');
    expect(match(`Bearer ${'a'.repeat(15)}`)).toBeUndefined();
    expect(match(`Basic ${'a'.repeat(16)}`)).toBeUndefined();
    expect(match('Bearer')).toBeUndefined();
    expect(match(undefined)).toBeUndefined();
    expect(tokenMatcher([])(`Bearer ${'a'.repeat(16)}`)).toBeUndefined();
  });

  test('isLoopbackHost', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1']) expect(isLoopbackHost(host)).toBe(true);
    for (const host of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.1', 'example.com', '::ffff:10.0.0.1']) expect(isLoopbackHost(host)).toBe(false);
  });

  test('durations: bare numbers are seconds', () => {
    expect(parseAdminDuration('90')).toBe(90_000);
    expect(parseAdminDuration(2)).toBe(2000);
    expect(parseAdminDuration('5m')).toBe(300_000);
    expect(parseAdminDuration('500ms')).toBe(500);
    expect(parseAdminDuration('soon')).toBeUndefined();
  });
});
