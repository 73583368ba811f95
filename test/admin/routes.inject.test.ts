import { buildAdminApp } from '../../src/admin/server';
import { parseConfig } from '../../src/config/load';
import { createLogger } from '../../src/log/logger';
import type { PolicyRuntime } from '../../src/policy';
import { StoreUnavailableError, type Store } from '../../src/store/types';
import { Writable } from 'node:stream';

/** Route-level behaviour with app.inject() and a stub store: error mapping and what errors may reveal. */

const TOKEN = 'inject-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };

function stubStore(overrides: Partial<Store>): Store {
  return { kind: 'file', ping: async () => undefined, ...overrides } as Store;
}

async function app(store: Store, logLines: string[] = []) {
  const config = parseConfig(
    { listeners: [{ name: 'smtp', port: 0, tls: 'starttls', auth: 'required' }], admin: { tokens: [{ name: 'ops', token: TOKEN, scopes: ['read', 'operate', 'portal', 'metrics'] }] } },
    {},
    '/tmp',
  );
  const sink = new Writable({ write: (chunk, _enc, done) => (logLines.push(String(chunk)), done()) });
  return buildAdminApp({ config, store, policy: {} as PolicyRuntime, logger: createLogger('info', sink) });
}

test('store outages answer 503; unexpected failures 500 without internals; non-JSON bodies 415', async () => {
  const logs: string[] = [];
  const admin = await app(
    stubStore({
      counts: async () => {
        throw new StoreUnavailableError('redis at 127.0.0.1:1 is unreachable');
      },
      getMessage: async () => {
        throw new Error('Subject: secret diagnosis');
      },
    }),
    logs,
  );
  const down = await admin.inject({ method: 'GET', url: '/api/v1/stats', headers: auth });
  expect(down.statusCode).toBe(503);
  expect(down.json()).toMatchObject({ error: 'unavailable' });

  const broken = await admin.inject({ method: 'GET', url: '/api/v1/queue/abc', headers: auth });
  expect(broken.statusCode).toBe(500);
  expect(broken.body).not.toContain('secret');

  const notJson = await admin.inject({ method: 'POST', url: '/api/v1/portal/claim', headers: { ...auth, 'content-type': 'application/x-www-form-urlencoded' }, payload: 'owner=x' });
  expect(notJson.statusCode).toBe(415);
  await admin.close();
});

test('/healthz is public, other spellings of it are not; readiness without a helper pings the store', async () => {
  const admin = await app(
    stubStore({
      ping: async () => {
        throw new Error('down');
      },
    }),
  );
  expect((await admin.inject({ method: 'GET', url: '/healthz?probe=1' })).statusCode).toBe(200);
  expect((await admin.inject({ method: 'GET', url: '/healthz/../api/v1/stats' })).statusCode).toBe(401);
  expect((await admin.inject({ method: 'GET', url: '/api/v1/stats?x=/healthz' })).statusCode).toBe(401);
  const ready = await admin.inject({ method: 'GET', url: '/readyz', headers: auth });
  expect(ready.statusCode).toBe(503);
  expect(ready.json()).toMatchObject({ ready: false, checks: { store: { ok: false, detail: 'down' } } });
  // Without a token the probe still answers, without the reason.
  const bare = await admin.inject({ method: 'GET', url: '/readyz' });
  expect(bare.statusCode).toBe(503);
  expect(bare.json()).not.toHaveProperty('checks');
  expect((await admin.inject({ method: 'GET', url: '/metrics', headers: auth })).statusCode).toBe(404);
  await admin.close();
});
