import { redactRedisUrl, redisAddress, redisConnection, secretFromFile } from '../../../src/store/redis/connection';

describe('Redis connection settings', () => {
  test('redactRedisUrl hides the password and keeps everything else', () => {
    expect(redactRedisUrl('rediss://sealgate:s3cr%40t@redis.example:6380/2')).toBe('rediss://sealgate:***@redis.example:6380/2');
    expect(redactRedisUrl('redis://:onlypass@127.0.0.1:6379')).toBe('redis://:***@127.0.0.1:6379');
    expect(redactRedisUrl('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
    expect(redactRedisUrl('not a url with secret')).toBe('<unparsable redis url>');
  });

  test('redisAddress names host and port only', () => {
    expect(redisAddress('redis://user:pw@10.0.0.5')).toBe('10.0.0.5:6379');
    expect(redisAddress('rediss://user:pw@redis.example:6380')).toBe('redis.example:6380');
  });

  test('a password from a file goes into a URL without one (encoded so ioredis decodes it back), never over a URL password', () => {
    const withFile = new URL(redisConnection('redis://sealgate@127.0.0.1:6379', 'p@ss:w/rd%!').url);
    expect(decodeURIComponent(withFile.password)).toBe('p@ss:w/rd%!');
    expect(withFile.username).toBe('sealgate');
    expect(new URL(redisConnection('redis://u:fromurl@127.0.0.1', 'fromfile').url).password).toBe('fromurl');
    expect(new URL(redisConnection('redis://127.0.0.1', undefined).url).password).toBe('');
  });

  test('TLS options only for rediss://, and the scheme lower-cased (ioredis turns TLS on for a literal "rediss://")', () => {
    expect(redisConnection('REDISS://redis.example', undefined, { ca: 'PEM', servername: 'r.internal' })).toEqual({ url: 'rediss://redis.example', tls: { ca: 'PEM', servername: 'r.internal' } });
    expect(redisConnection('rediss://redis.example').tls).toBeUndefined();
    expect(redisConnection('redis://redis.example', undefined, { ca: 'PEM' }).tls).toBeUndefined();
  });

  test('a secret file loses one trailing newline, nothing else', () => {
    expect(secretFromFile('pw\n')).toBe('pw');
    expect(secretFromFile('pw\r\n')).toBe('pw');
    expect(secretFromFile(' pw \n\n')).toBe(' pw \n');
  });
});
