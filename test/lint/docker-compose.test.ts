import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseDocument } from 'yaml';

/**
 * The shipped docker-compose.yml (docker compose itself is not available in CI): Redis pinned to a version and
 * protected by a password from a secret file, Sealgate given that password and its admin token as files, and
 * every secret a service uses declared.
 */

interface Service {
  image?: string;
  entrypoint?: string[];
  command?: string[];
  environment?: Record<string, string>;
  secrets?: string[];
  healthcheck?: { test: string[] };
}

const file = path.resolve(__dirname, '..', '..', 'docker-compose.yml');
const doc = parseDocument(readFileSync(file, 'utf8'));
const compose = doc.toJS() as { services: Record<string, Service>; secrets: Record<string, { file: string }> };

describe('docker-compose.yml', () => {
  test('is valid YAML', () => {
    expect(doc.errors).toEqual([]);
  });

  test('the Redis image is pinned to a full version', () => {
    expect(compose.services.redis!.image).toMatch(/^redis:\d+\.\d+\.\d+(-[a-z0-9.]+)?(@sha256:[0-9a-f]{64})?$/);
  });

  test('Redis requires the password from the secret file, and its health check authenticates', () => {
    const redis = compose.services.redis!;
    expect(redis.secrets).toContain('redis_password');
    expect((redis.command ?? []).join(' ')).toMatch(/requirepass .*\/run\/secrets\/redis_password/);
    expect(redis.healthcheck!.test.join(' ')).toContain('/run/secrets/redis_password');
  });

  test('Sealgate reads the Redis password and the admin token from secret files, never from plain variables', () => {
    const sealgate = compose.services.sealgate!;
    expect(sealgate.environment).toMatchObject({ SEALGATE_REDIS_PASSWORD_FILE: '/run/secrets/redis_password', SEALGATE_ADMIN_TOKEN_FILE: '/run/secrets/admin_token' });
    expect(sealgate.environment!.SEALGATE_ADMIN_TOKEN).toBeUndefined();
    expect(new URL(sealgate.environment!.SEALGATE_REDIS_URL!).password).toBe('');
    expect(sealgate.secrets).toEqual(expect.arrayContaining(['redis_password', 'admin_token']));
  });

  test('every secret a service uses is declared with a file', () => {
    for (const service of Object.values(compose.services)) {
      for (const secret of service.secrets ?? []) expect(compose.secrets[secret]?.file).toEqual(expect.any(String));
    }
  });
});
