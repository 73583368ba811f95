import path from 'node:path';
import { parseConfig } from '../../src/config/load';
import { configErrorOf } from './config-error';

const minimal = { listeners: [{ name: 'sub', port: 2587, tls: 'starttls', auth: 'required' }] };
const base = '/etc/sealgate';

describe('queue.redis and queue.startupTimeout', () => {
  test('queue.startupTimeout defaults to 60 s and takes a duration', () => {
    expect(parseConfig(minimal, {}, base).queue.startupTimeout).toBe(60_000);
    expect(parseConfig({ ...minimal, queue: { startupTimeout: '5s' } }, {}, base).queue.startupTimeout).toBe(5_000);
  });

  test.each(['http://127.0.0.1:6379', 'unix:///run/redis.sock', '127.0.0.1:6379', '/run/redis.sock', 'redis.example'])(
    'a Redis URL %s (not redis: or rediss:) is a config error naming queue.redis.url',
    (url) => {
      const message = configErrorOf(() => parseConfig({ ...minimal, queue: { backend: 'redis', redis: { url } } }, {}, base));
      expect(message).toContain('queue.redis.url');
      expect(message).toContain('redis:// or rediss://');
    },
  );

  test('SEALGATE_REDIS_URL is checked the same way, and its password never appears in the message', () => {
    const message = configErrorOf(() => parseConfig(minimal, { SEALGATE_REDIS_URL: 'https://user:hunter2-secret@redis.example' }, base));
    expect(message).toContain('queue.redis.url');
    expect(message).not.toContain('hunter2-secret');
  });

  test.each(['redis://127.0.0.1:6379', 'rediss://user:pw@redis.example:6380/2', 'REDISS://redis.example'])('%s is accepted', (url) => {
    expect(parseConfig({ ...minimal, queue: { backend: 'redis', redis: { url } } }, {}, base).queue.redis.url).toBe(url);
  });

  test('SEALGATE_REDIS_PASSWORD_FILE sets queue.redis.passwordFile; it and queue.redis.tls.ca resolve against the config folder', () => {
    const config = parseConfig(
      { ...minimal, queue: { redis: { url: 'rediss://redis.example', tls: { ca: 'redis-ca.pem', servername: 'redis.internal' } } } },
      { SEALGATE_REDIS_PASSWORD_FILE: 'secrets/redis' },
      base,
    );
    expect(config.queue.redis.passwordFile).toBe(path.resolve(base, 'secrets/redis'));
    expect(config.queue.redis.tls).toEqual({ ca: path.resolve(base, 'redis-ca.pem'), servername: 'redis.internal' });
    expect(parseConfig(minimal, {}, base).queue.redis).toMatchObject({ passwordFile: null, tls: { ca: null, servername: null } });
  });

  test('queue.redis.tls with a plain redis:// URL is refused (the CA would silently go unused)', () => {
    const message = configErrorOf(() => parseConfig({ ...minimal, queue: { redis: { url: 'redis://redis.example', tls: { ca: 'ca.pem' } } } }, {}, base));
    expect(message).toContain('queue.redis.tls');
  });

  test('queue.redis.cluster is off by default; on, it takes seed nodes, a replica count and a replica timeout', () => {
    expect(parseConfig(minimal, {}, base).queue.redis.cluster).toEqual({ enabled: false, nodes: [], replicas: 1, replicaTimeout: 2_000 });
    const cluster = parseConfig(
      { ...minimal, queue: { backend: 'redis', redis: { url: 'redis://10.0.0.1:7000', cluster: { enabled: true, nodes: ['redis://10.0.0.2:7000'], replicas: 2, replicaTimeout: '500ms' } } } },
      {},
      base,
    ).queue.redis.cluster;
    expect(cluster).toEqual({ enabled: true, nodes: ['redis://10.0.0.2:7000'], replicas: 2, replicaTimeout: 500 });
  });

  test('a cluster seed node that is not a redis:// URL, or a prefix with a hash tag of its own on a cluster, is refused', () => {
    expect(configErrorOf(() => parseConfig({ ...minimal, queue: { redis: { cluster: { enabled: true, nodes: ['10.0.0.2:7000'] } } } }, {}, base))).toContain('queue.redis.cluster.nodes');
    expect(configErrorOf(() => parseConfig({ ...minimal, queue: { redis: { prefix: '{sg}', cluster: { enabled: true } } } }, {}, base))).toContain('queue.redis.prefix');
    // A single Redis keeps any prefix it had.
    expect(parseConfig({ ...minimal, queue: { redis: { prefix: '{sg}' } } }, {}, base).queue.redis.prefix).toBe('{sg}');
  });
});
