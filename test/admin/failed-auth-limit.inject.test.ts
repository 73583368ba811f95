import { Writable } from 'node:stream';
import { buildAdminApp } from '../../src/admin/server';
import { parseConfig } from '../../src/config/load';
import { createLogger } from '../../src/log/logger';
import type { PolicyRuntime } from '../../src/policy';
import type { Store } from '../../src/store/types';

/** admin.maxFailedAuthPerMinute with app.inject(): failed token checks per client address, 429 with Retry-After. */

const TOKEN = 'inject-token-0123456789';
const good = { authorization: `Bearer ${TOKEN}` };
const bad = { authorization: 'Bearer wrong-token-0123456789' };

async function app(max: number, logLines: string[] = []) {
  const config = parseConfig(
    { listeners: [{ name: 'smtp', port: 0, tls: 'starttls', auth: 'required' }], admin: { tokens: [{ name: 'ops', token: TOKEN }], maxFailedAuthPerMinute: max } },
    {},
    '/tmp',
  );
  const store = { kind: 'file', ping: async () => undefined } as unknown as Store;
  const sink = new Writable({ write: (chunk, _enc, done) => (logLines.push(String(chunk)), done()) });
  return buildAdminApp({ config, store, policy: {} as PolicyRuntime, logger: createLogger('info', sink) });
}

describe('failed admin authentication per client address', () => {
  beforeEach(() => jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'], now: new Date('2026-11-29T12:00:00Z') }));
  afterEach(() => jest.useRealTimers());

  test('10 failures get 401; the 11th and everything after from that address get 429 with Retry-After, a good token included', async () => {
    const logs: string[] = [];
    const admin = await app(10, logs);
    const from = (remoteAddress: string, headers: Record<string, string>, url = '/openapi.json') => admin.inject({ method: 'GET', url, headers, remoteAddress });
    for (let i = 0; i < 10; i++) expect((await from('192.0.2.1', bad)).statusCode).toBe(401);
    // Right at the limit a good token still works.
    expect((await from('192.0.2.1', good)).statusCode).toBe(200);
    const refused = await from('192.0.2.1', bad);
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['retry-after']).toBe('60');
    expect(refused.json()).toMatchObject({ error: 'too-many-requests' });
    const goodButBlocked = await from('192.0.2.1', good);
    expect(goodButBlocked.statusCode).toBe(429);
    // No token at all is also refused, and refusals do not extend the window.
    jest.advanceTimersByTime(30_000);
    const later = await from('192.0.2.1', {});
    expect(later.statusCode).toBe(429);
    expect(Number(later.headers['retry-after'])).toBe(30);
    // /healthz and a token-less /readyz stay public (a probe is not locked out), other addresses are unaffected.
    expect((await from('192.0.2.1', {}, '/healthz')).statusCode).toBe(200);
    expect((await from('192.0.2.1', {}, '/readyz')).statusCode).toBe(200);
    expect((await from('192.0.2.1', good, '/readyz')).statusCode).toBe(429);
    expect((await from('192.0.2.2', good)).statusCode).toBe(200);
    expect((await from('192.0.2.2', bad)).statusCode).toBe(401);
    // The window began with the first failure: a minute later the address may try again.
    jest.advanceTimersByTime(30_000);
    expect((await from('192.0.2.1', good)).statusCode).toBe(200);
    expect(logs.join('')).toContain('"event":"admin-auth-throttled"');
    expect(logs.join('')).not.toContain('wrong-token');
    await admin.close();
  });

  test('a good token does not count against the address', async () => {
    const admin = await app(2);
    for (let i = 0; i < 20; i++) expect((await admin.inject({ method: 'GET', url: '/openapi.json', headers: good, remoteAddress: '192.0.2.3' })).statusCode).toBe(200);
    await admin.close();
  });
});
