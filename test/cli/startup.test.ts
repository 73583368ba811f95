import path from 'node:path';
import { AdminConfigError } from '../../src/admin/server';
import { ConfigError, parseConfig } from '../../src/config/load';
import { CertificateError } from '../../src/inbound/dev-certificate';
import { DkimKeyError } from '../../src/mail/dkim';
import { FIRST_DELAY_MS, MAX_DELAY_MS, classifyStartError, startRetryDelay } from '../../src/cli/startup';
import { SpoolLockedError, StoreUnavailableError } from '../../src/store';

const base = '/srv/sealgate/config';
const listeners = [{ name: 'sub', port: 2587, tls: 'starttls', auth: 'required' }];
const fileConfig = parseConfig({ listeners, queue: { path: '../queue' }, tls: { cert: 'tls/cert.pem', key: 'tls/key.pem' } }, {}, base);
const redisConfig = parseConfig({ listeners, queue: { backend: 'redis', redis: { url: 'redis://127.0.0.1:6379', passwordFile: 'redis.pw' } } }, {}, base);
const spool = path.resolve(base, '../queue');

function errnoError(code: string, syscall: string, file?: string): NodeJS.ErrnoException {
  const err = new Error(`${code}: ${syscall} ${file ?? ''}`) as NodeJS.ErrnoException;
  err.code = code;
  err.syscall = syscall;
  if (file !== undefined) err.path = file;
  return err;
}

describe('classifyStartError', () => {
  test.each([
    ['an invalid config', new ConfigError('queue.redis.url: expected a redis:// URL')],
    ['an unsafe admin listener', new AdminConfigError('admin.host is 0.0.0.0 and no admin token is configured')],
    ['an unreadable inbound certificate', new CertificateError('cannot read the TLS certificate (tls.cert)')],
    ['an unusable DKIM key (tlsrpt.dkim, portal.dkim)', new DkimKeyError('tlsrpt.dkim.keyFile /etc/sealgate/dkim.pem: not a PEM private key')],
    ['the spool held by another relay', new SpoolLockedError('queue spool is already used by another Sealgate relay (PID 42)', 42)],
    ['a listener port in use', errnoError('EADDRINUSE', 'listen')],
    ['a listener address not on this host', errnoError('EADDRNOTAVAIL', 'listen')],
    ['a privileged port without the right', errnoError('EACCES', 'listen')],
    ['a missing portal certificate (wrapped)', new Error('cannot read portal.cert', { cause: errnoError('ENOENT', 'open', path.resolve(base, 'tls/cert.pem')) })],
  ])('%s is a usage error (exit 2, never retried)', (_name, err) => {
    expect(classifyStartError(err, fileConfig)).toBe('usage');
  });

  test('a missing Redis password file is a usage error too', () => {
    expect(classifyStartError(errnoError('ENOENT', 'open', path.resolve(base, 'redis.pw')), redisConfig)).toBe('usage');
  });

  test('Redis refusing the configured credentials is a usage error (a wrong password does not get right by waiting)', () => {
    expect(classifyStartError(new Error('WRONGPASS invalid username-password pair or user is disabled.'), redisConfig)).toBe('usage');
    expect(classifyStartError(new Error('cannot open the Redis queue', { cause: new Error('NOAUTH Authentication required.') }), redisConfig)).toBe('usage');
    expect(classifyStartError(new Error('WRONGPASS in an unrelated message'), fileConfig)).toBe('failure');
  });

  test.each([
    ['Redis down', new StoreUnavailableError('Redis queue at 127.0.0.1:6379 is unreachable (connect ECONNREFUSED)')],
    ['the spool folder not writable', errnoError('EACCES', 'mkdir', spool)],
    ['a lock file inside the spool not writable', errnoError('EACCES', 'open', path.join(spool, 'relay.pid'))],
    ['a regular file on the way to the spool', errnoError('ENOTDIR', 'mkdir', path.dirname(spool))],
    ['a read-only spool file system', errnoError('EROFS', 'open', path.join(spool, 'relay.pid'))],
    ['a full disk (no path on a write)', errnoError('ENOSPC', 'write')],
  ])('%s is retried', (_name, err) => {
    expect(classifyStartError(err, fileConfig)).toBe('retry');
  });

  test.each([
    ['a weak-durability refusal', redisConfig, new Error('Redis appendfsync is "everysec"; queue.redis.onWeakDurability is refuse')],
    ['a file error outside the spool', fileConfig, errnoError('EACCES', 'open', '/var/lib/other/file')],
    ['a spool path error with the Redis store', redisConfig, errnoError('EACCES', 'mkdir', spool)],
    ['an EADDRINUSE from a client connect (not a bind)', fileConfig, errnoError('EADDRINUSE', 'connect')],
    ['a bug', fileConfig, new TypeError('cannot read properties of undefined')],
    ['a thrown string', fileConfig, 'boom'],
  ])('%s is a runtime failure (exit 1, not retried)', (_name, config, err) => {
    expect(classifyStartError(err, config)).toBe('failure');
  });
});

describe('startRetryDelay', () => {
  test('doubles from 1 s and stops growing at 10 s', () => {
    const noJitter = () => 0;
    expect([1, 2, 3, 4, 5, 6, 50, 5000].map((attempt) => startRetryDelay(attempt, noJitter))).toEqual([1_000, 2_000, 4_000, 8_000, 10_000, 10_000, 10_000, 10_000]);
  });

  test('jitter only shortens a wait, by at most a quarter, so it never exceeds the cap', () => {
    for (const r of [0, 0.25, 0.5, 0.999999]) {
      for (const attempt of [1, 3, 9]) {
        const step = Math.min(FIRST_DELAY_MS * 2 ** (attempt - 1), MAX_DELAY_MS);
        const delay = startRetryDelay(attempt, () => r);
        expect(delay).toBeLessThanOrEqual(step);
        expect(delay).toBeGreaterThanOrEqual(step * 0.75);
      }
    }
    expect(startRetryDelay(1, () => 0.5)).toBe(875);
  });
});
