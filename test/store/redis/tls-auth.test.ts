import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { parseConfig } from '../../../src/config/load';
import { createStore, StoreUnavailableError } from '../../../src/store';
import { startTlsRedis, type TlsRedisHandle } from '../../support/redis-server';

/**
 * The Redis store over TLS (`rediss://`, a private CA and a server name from queue.redis.tls) with Redis AUTH:
 * an ACL user and password in the URL, or the default user's password from queue.redis.passwordFile. A real
 * redis-server with only a TLS port; no password reaches a log line or an error message.
 */

const DEFAULT_PASSWORD = 'default-pw-7f3a';
const USER = { name: 'sealgate', password: 'acl-pw-91c2' };

describe('Redis store over TLS with AUTH', () => {
  let redis: TlsRedisHandle;
  let dir: string;
  let lines: string[];

  beforeAll(async () => {
    redis = await startTlsRedis({ password: DEFAULT_PASSWORD, user: USER });
    dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-redis-tls-config-'));
    writeFileSync(path.join(dir, 'redis-ca.pem'), redis.ca);
    // As Docker and Kubernetes write secrets: one line with a trailing newline.
    writeFileSync(path.join(dir, 'redis-password'), `${DEFAULT_PASSWORD}\n`, { mode: 0o600 });
  }, 30_000);

  afterAll(async () => {
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    lines = [];
  });

  function logger() {
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    return pino({ level: 'debug' }, sink);
  }

  function storeFor(redisConfig: Record<string, unknown>, env: Record<string, string> = {}) {
    const config = parseConfig(
      { listeners: [{ name: 'sub', port: 2587, tls: 'starttls', auth: 'required' }], queue: { backend: 'redis', redis: { prefix: `tls-${process.pid}`, ...redisConfig } } },
      env,
      dir,
    );
    return createStore(config, logger());
  }

  async function roundTrip(store: ReturnType<typeof createStore>): Promise<void> {
    await store.open();
    try {
      expect(await store.counts()).toEqual(expect.any(Object));
    } finally {
      await store.close();
    }
  }

  const tlsSettings = () => ({ tls: { ca: 'redis-ca.pem', servername: redis.servername } });

  test('an ACL user and password in a rediss:// URL, the private CA and server name from queue.redis.tls', async () => {
    await roundTrip(storeFor({ url: `rediss://${USER.name}:${USER.password}@127.0.0.1:${redis.port}`, ...tlsSettings() }));
  });

  test('the password from queue.redis.passwordFile (trailing newline dropped), and from SEALGATE_REDIS_PASSWORD_FILE', async () => {
    await roundTrip(storeFor({ url: redis.url, passwordFile: 'redis-password', ...tlsSettings() }));
    await roundTrip(storeFor({ url: redis.url, ...tlsSettings() }, { SEALGATE_REDIS_PASSWORD_FILE: path.join(dir, 'redis-password') }));
  });

  test('a wrong password is refused, and neither password appears in the error or the log', async () => {
    const store = storeFor({ url: `rediss://${USER.name}:wrong-${USER.password}@127.0.0.1:${redis.port}`, ...tlsSettings() });
    const failure = await store.open().then(
      () => undefined,
      (err: Error) => err,
    );
    await store.close();
    expect(failure?.message).toMatch(/WRONGPASS|invalid username-password/);
    const shown = `${failure?.message}\n${lines.join('')}`;
    expect(shown).not.toContain(USER.password);
  });

  test('without the server name the certificate (which does not name 127.0.0.1) is refused: unavailable, naming the TLS cause', async () => {
    const store = storeFor({ url: `rediss://${USER.name}:${USER.password}@127.0.0.1:${redis.port}`, tls: { ca: 'redis-ca.pem' } });
    const failure = await store.open().then(
      () => undefined,
      (err: Error) => err,
    );
    await store.close();
    expect(failure).toBeInstanceOf(StoreUnavailableError);
    expect(failure?.message).toMatch(/IP: 127\.0\.0\.1 is not in the cert's list|altnames/i);
    expect(`${failure?.message}\n${lines.join('')}`).not.toContain(USER.password);
  });

  test('a plain redis:// URL to the TLS port fails instead of sending the password in clear text to something else', async () => {
    const store = storeFor({ url: `redis://${USER.name}:${USER.password}@127.0.0.1:${redis.port}` });
    await expect(store.open()).rejects.toBeInstanceOf(StoreUnavailableError);
    await store.close();
    expect(lines.join('')).not.toContain(USER.password);
  });
});
