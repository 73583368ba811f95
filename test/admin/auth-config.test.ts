import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isLoopbackHost, liveTokenMatcher, missingScope, tokenMatcher, type AdminToken } from '../../src/admin/auth';
import { parseAdminDuration } from '../../src/admin/durations';
import { assertAdminListenerSafe } from '../../src/admin/server';
import { ConfigError, parseConfig } from '../../src/config/load';

const base = { listeners: [{ name: 'smtp', port: 0, tls: 'starttls', auth: 'required' }] };

describe('admin config', () => {
  test('defaults: enabled on 127.0.0.1:8025 without tokens', () => {
    expect(parseConfig(base, {}, '/tmp').admin).toEqual({ enabled: true, host: '127.0.0.1', port: 8025, tokens: [], maxFailedAuthPerMinute: 10, publicMetrics: false, metricsTopDomains: 10 });
  });

  test('SEALGATE_ADMIN_TOKEN adds a token named env next to configured ones', () => {
    const config = parseConfig({ ...base, admin: { tokens: [{ name: 'ops', token: 'x'.repeat(16) }] } }, { SEALGATE_ADMIN_TOKEN: 'y'.repeat(20) }, '/tmp');
    expect(config.admin.tokens).toEqual([
      { name: 'ops', token: 'x'.repeat(16) },
      { name: 'env', token: 'y'.repeat(20) },
    ]);
  });

  test('SEALGATE_ADMIN_TOKEN_FILE reads a token from a file (trimmed), named env-file, beside SEALGATE_ADMIN_TOKEN', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-token-file-'));
    try {
      const file = path.join(dir, 'admin-token');
      writeFileSync(file, `  ${'s'.repeat(32)}\n\n`);
      expect(parseConfig(base, { SEALGATE_ADMIN_TOKEN_FILE: file }, '/tmp').admin.tokens).toEqual([{ name: 'env-file', token: 's'.repeat(32) }]);
      expect(parseConfig(base, { SEALGATE_ADMIN_TOKEN_FILE: file, SEALGATE_ADMIN_TOKEN: 'y'.repeat(20) }, '/tmp').admin.tokens.map((t) => t.name)).toEqual(['env', 'env-file']);

      const missing = path.join(dir, 'nope');
      expect(() => parseConfig(base, { SEALGATE_ADMIN_TOKEN_FILE: missing }, '/tmp')).toThrow(ConfigError);
      expect(() => parseConfig(base, { SEALGATE_ADMIN_TOKEN_FILE: missing }, '/tmp')).toThrow(`SEALGATE_ADMIN_TOKEN_FILE: cannot read ${missing}: ENOENT`);
      expect(() => parseConfig(base, { SEALGATE_ADMIN_TOKEN_FILE: dir }, '/tmp')).toThrow(/SEALGATE_ADMIN_TOKEN_FILE: cannot read .*EISDIR/);
      writeFileSync(file, 'short-secret\n');
      expect(() => parseConfig(base, { SEALGATE_ADMIN_TOKEN_FILE: file }, '/tmp')).toThrow(`SEALGATE_ADMIN_TOKEN_FILE: the token in ${file} has 12 characters; admin tokens must be at least 16`);
      writeFileSync(file, '\n');
      expect(() => parseConfig(base, { SEALGATE_ADMIN_TOKEN_FILE: file }, '/tmp')).toThrow(/has 0 characters/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('SEALGATE_ADMIN_TOKEN_SCOPES gives the environment tokens their scopes; without it they are legacy tokens', () => {
    const env = { SEALGATE_ADMIN_TOKEN: 'y'.repeat(20), SEALGATE_ADMIN_TOKEN_SCOPES: ' read, Metrics,read ' };
    expect(parseConfig(base, env, '/tmp').admin.tokens).toEqual([{ name: 'env', token: 'y'.repeat(20), scopes: ['read', 'metrics'] }]);
    expect(parseConfig(base, { SEALGATE_ADMIN_TOKEN: 'y'.repeat(20) }, '/tmp').admin.tokens[0]).not.toHaveProperty('scopes');
    expect(() => parseConfig(base, { ...env, SEALGATE_ADMIN_TOKEN_SCOPES: 'read,everything' }, '/tmp')).toThrow(
      /SEALGATE_ADMIN_TOKEN_SCOPES: unknown scope everything; use a comma-separated list of read, operate, content, portal, metrics/,
    );
    expect(() => parseConfig(base, { ...env, SEALGATE_ADMIN_TOKEN_SCOPES: ' , ' }, '/tmp')).toThrow(/SEALGATE_ADMIN_TOKEN_SCOPES: no scope given/);
  });

  test('token scopes: known names, at least one', () => {
    const token = (scopes: unknown) => ({ ...base, admin: { tokens: [{ name: 'ops', token: 'x'.repeat(16), scopes }] } });
    expect(parseConfig(token(['portal']), {}, '/tmp').admin.tokens[0]!.scopes).toEqual(['portal']);
    expect(() => parseConfig(token(['admin']), {}, '/tmp')).toThrow(/admin\.tokens\.0\.scopes\.0/);
    expect(() => parseConfig(token([]), {}, '/tmp')).toThrow(/admin\.tokens\.0\.scopes: give at least one scope/);
    expect(() => parseConfig({ ...base, admin: { publicMetrics: 'yes' } }, {}, '/tmp')).toThrow(/admin\.publicMetrics/);
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
    expect(match(`Bearer ${'a'.repeat(16)}`)).toEqual({ name: 'ops', scopes: new Set(['read', 'operate', 'metrics']) });
    expect(match(`bearer ${'b'.repeat(24)}`)?.name).toBe('portal');
    expect(match(`Bearer ${'a'.repeat(15)}`)).toBeUndefined();
    expect(match(`Basic ${'a'.repeat(16)}`)).toBeUndefined();
    expect(match('Bearer')).toBeUndefined();
    expect(match(undefined)).toBeUndefined();
    expect(tokenMatcher([])(`Bearer ${'a'.repeat(16)}`)).toBeUndefined();
  });

  test('tokenMatcher gives configured scopes; a token without scopes gets read, operate and metrics', () => {
    const match = tokenMatcher([
      { name: 'portal', token: 'p'.repeat(16), scopes: ['portal'] },
      { name: 'old', token: 'o'.repeat(16) },
    ]);
    expect([...match(`Bearer ${'p'.repeat(16)}`)!.scopes]).toEqual(['portal']);
    expect([...match(`Bearer ${'o'.repeat(16)}`)!.scopes].sort()).toEqual(['metrics', 'operate', 'read']);
  });

  test('missingScope: any listed scope is enough; otherwise the first is named', () => {
    expect(missingScope('read', new Set(['read']))).toBeUndefined();
    expect(missingScope('read', new Set(['portal', 'content']))).toBe('read');
    expect(missingScope(['content', 'portal'], new Set(['portal']))).toBeUndefined();
    expect(missingScope(['content', 'portal'], new Set(['read', 'operate', 'metrics']))).toBe('content');
  });

  test('liveTokenMatcher follows the list it is given, so a removed token stops at once', () => {
    let tokens: AdminToken[] = [{ name: 'a', token: 'a'.repeat(16) }];
    const match = liveTokenMatcher(() => tokens);
    expect(match(`Bearer ${'a'.repeat(16)}`)?.name).toBe('a');
    tokens = [{ name: 'b', token: 'b'.repeat(16), scopes: ['read'] }];
    expect(match(`Bearer ${'a'.repeat(16)}`)).toBeUndefined();
    expect(match(`Bearer ${'b'.repeat(16)}`)?.name).toBe('b');
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
