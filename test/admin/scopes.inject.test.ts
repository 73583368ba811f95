import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { ADMIN_SCOPES, type AdminScope, type RouteScope } from '../../src/admin/auth';
import { AdminConfigError, adminRoutes, buildAdminApp, startAdminServer, type AdminServerOptions } from '../../src/admin/server';
import { LiveConfig } from '../../src/config/live';
import { parseConfig, type LoadedConfig } from '../../src/config/load';
import type { Config } from '../../src/config/schema';
import { VERSION } from '../../src/config/version';
import { createAuditLog } from '../../src/evidence/audit-log';
import { FallbackService } from '../../src/fallback';
import { createLogger, silentLogger } from '../../src/log/logger';
import type { PolicyRuntime } from '../../src/policy';
import type { PortalAdmin } from '../../src/admin/routes/portal-items';
import { FileStore } from '../../src/store/file/file-store';
import { chunked, evidence, newMessage } from '../store/contract';

/** Token scopes with app.inject(): what each scope may do, the audit of body reads, public probes, live token changes. */

const DAY = 86_400_000;
const SECRET_BODY = 'Subject: secret diagnosis\r\n\r\nbody text only the recipient may see\r\n';

const tokenOf = (name: string) => `${name}-token-0123456789abcdef`;
const bearer = (name: string) => ({ authorization: `Bearer ${tokenOf(name)}` });

/** One token per scope (named after it), one with all of them, one without scopes (legacy). */
function tokens(): Array<{ name: string; token: string; scopes?: AdminScope[] }> {
  return [...ADMIN_SCOPES.map((s) => ({ name: s, token: tokenOf(s), scopes: [s] })), { name: 'all', token: tokenOf('all'), scopes: [...ADMIN_SCOPES] }, { name: 'legacy', token: tokenOf('legacy') }];
}

function configWith(admin: Record<string, unknown> = {}, dir = '/tmp'): Config {
  return parseConfig({ listeners: [{ name: 'smtp', port: 0, tls: 'starttls', auth: 'required' }], admin: { tokens: tokens(), ...admin } }, {}, dir);
}

let dir: string;
let store: FileStore;
let logs: string[];

function logger() {
  return createLogger('info', new Writable({ write: (chunk, _enc, done) => (logs.push(String(chunk)), done()) }));
}

function logEvents(event: string): Array<Record<string, any>> {
  return logs
    .join('')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, any>)
    .filter((l) => l.event === event);
}

const portalStub = { list: async () => [], show: async () => ({}) } as unknown as PortalAdmin;

async function app(overrides: Partial<AdminServerOptions> = {}): Promise<FastifyInstance> {
  return buildAdminApp({
    config: configWith(),
    store,
    policy: {} as PolicyRuntime,
    logger: logger(),
    metrics: { render: async () => ({ contentType: 'text/plain; version=0.0.4', body: '# HELP sealgate_up 1\n' }) },
    readiness: async () => ({ ready: true, checks: { store: { ok: true }, listeners: { ok: true, detail: 'smtp 127.0.0.1:25' } } }),
    portal: portalStub,
    ...overrides,
  });
}

/** A message diverted to the fallback for `recipient`: the fallback item's id and the queue id. */
async function fallbackItem(recipient: string): Promise<{ id: string; queueId: string }> {
  await store.enqueue(newMessage([recipient]), chunked(Buffer.from(SECRET_BODY)), { messageId: '<m@clinic.test>' });
  const [claimed] = await store.claimDue('w1', 1, 60_000);
  await store.completeJob(claimed!.job.id, 'w1', { recipients: [{ address: recipient, outcome: 'diverted', evidence: evidence('diverted', 'starttls-not-offered') }] });
  const { items } = await new FallbackService(store).page({ limit: 10, offset: 0 });
  const item = items.find((i) => i.recipient === recipient)!;
  return { id: item.id, queueId: item.queueId };
}

beforeEach(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-scopes-'));
  store = new FileStore({ path: path.join(dir, 'queue'), keepFinished: DAY, logger: silentLogger() });
  await store.open();
  logs = [];
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The scope of every route; a new route must be added here (and to docs/admin-api.md) with its scope. */
const EXPECTED: Record<string, string> = {
  'GET /api/v1/queue': 'read',
  'GET /api/v1/queue/:id': 'read',
  'POST /api/v1/queue/:id/retry': 'operate',
  'POST /api/v1/queue/:id/hold': 'operate',
  'POST /api/v1/queue/:id/release': 'operate',
  'DELETE /api/v1/queue/:id': 'operate',
  'POST /api/v1/queue/actions/:action': 'operate',
  'POST /api/v1/queue/flush': 'operate',
  'POST /api/v1/fallback/actions/release': 'operate',
  'GET /api/v1/audit': 'read',
  'GET /api/v1/fallback': 'read',
  'GET /api/v1/fallback/:id': 'read',
  'POST /api/v1/fallback/:id/release': 'operate',
  'DELETE /api/v1/fallback/:id': 'operate',
  'POST /api/v1/portal/claim': 'portal',
  'GET /api/v1/portal/items/:id/body': 'content|portal',
  'POST /api/v1/portal/items/:id/ack': 'portal',
  'GET /api/v1/portal/items': 'read',
  'GET /api/v1/portal/items/:id': 'read',
  'POST /api/v1/portal/items/:id/revoke': 'operate',
  'POST /api/v1/portal/items/:id/restore': 'operate',
  'POST /api/v1/portal/items/:id/purge': 'operate',
  'POST /api/v1/portal/items/:id/resend': 'operate',
  'POST /api/v1/portal/items/:id/release': 'operate',
  'POST /api/v1/portal/items/:id/extend': 'operate',
  'GET /api/v1/audit/:id': 'read',
  'GET /api/v1/check/:domain': 'read',
  'GET /api/v1/evidence/verify': 'read',
  'POST /api/v1/evidence/prune': 'operate',
  'GET /api/v1/stats': 'read',
  'GET /api/v1/reports': 'read',
  'GET /api/v1/config': 'read',
  'POST /api/v1/reload': 'operate',
  'GET /healthz': 'public',
  'GET /readyz': 'optional',
  'GET /metrics': 'metrics (public with admin.publicMetrics)',
  'GET /openapi.json': 'token',
};

describe('every route declares its scope', () => {
  test('the registered routes and their scopes are exactly the documented table', async () => {
    const admin = await app();
    const declared: Record<string, string> = {};
    for (const route of adminRoutes(admin)) {
      if (route.method === 'HEAD') continue;
      const scope = route.scope;
      const name = (s: RouteScope): string => (typeof s === 'string' ? s : s.join('|'));
      declared[`${route.method} ${route.url}`] =
        typeof scope === 'function' ? `${name(scope({ publicMetrics: false } as Config['admin']))} (${name(scope({ publicMetrics: true } as Config['admin']))} with admin.publicMetrics)` : name(scope);
    }
    expect(declared).toEqual(EXPECTED);
    expect(Object.keys(declared).filter((k) => k.includes('/api/v1/')).length).toBeGreaterThan(20);
    await admin.close();
  });

  test('every /api/v1 route refuses a token holding every other scope with 403 naming the one it needs', async () => {
    const probe = await app();
    const declared = adminRoutes(probe).filter((r) => r.url.startsWith('/api/v1/') && r.method !== 'HEAD');
    await probe.close();
    const neededBy = (scope: unknown): readonly AdminScope[] => (typeof scope === 'string' ? [scope as AdminScope] : (scope as readonly AdminScope[]));
    // Per route: a token with every scope but the ones it accepts, and one with only the first it accepts.
    const routeTokens = declared.flatMap((route, i) => [
      { name: `others-${i}`, token: tokenOf(`others-${i}`), scopes: ADMIN_SCOPES.filter((s) => !neededBy(route.scope).includes(s)) },
      { name: `needed-${i}`, token: tokenOf(`needed-${i}`), scopes: [neededBy(route.scope)[0]!] },
    ]);
    const admin = await app({ config: configWith({ tokens: routeTokens }) });
    expect(declared.length).toBeGreaterThan(20);
    for (const [i, route] of declared.entries()) {
      const needed = neededBy(route.scope);
      const label = `${route.method} ${route.url}`;
      const url = route.url.replace(':id', 'x').replace(':domain', 'example.test');
      const payload = route.method === 'GET' || route.method === 'DELETE' ? undefined : {};
      const refused = await admin.inject({ method: route.method as 'GET', url, headers: bearer(`others-${i}`), payload });
      expect({ label, status: refused.statusCode, scope: refused.json().scope }).toEqual({ label, status: 403, scope: needed[0] });
      expect(refused.json()).toMatchObject({ error: 'forbidden', message: expect.stringContaining(`"${needed[0]}"`) });
      // With the scope it needs, the request gets past the check (whatever the handler then answers).
      const allowed = await admin.inject({ method: route.method as 'GET', url, headers: bearer(`needed-${i}`), payload });
      expect({ label, status: allowed.statusCode }).not.toEqual({ label, status: 403 });
    }
    expect(declared.map((r) => r.url)).toContain('/api/v1/portal/items/:id/body');
    await admin.close();
  });

  test('a route registered without a scope is refused when it is added', async () => {
    const admin = await app();
    expect(() => admin.get('/api/v1/unscoped', async () => 'open')).toThrow(AdminConfigError);
    expect(() => admin.get('/api/v1/misspelt', { config: { scope: 'raed' as never } }, async () => 'open')).toThrow(/declares no valid scope/);
    await admin.close();
  });
});

describe('what each scope may do', () => {
  test('a portal token cannot list the queue (403 naming read) but claims, downloads and acknowledges', async () => {
    const admin = await app();
    const list = await admin.inject({ method: 'GET', url: '/api/v1/queue', headers: bearer('portal') });
    expect(list.statusCode).toBe(403);
    expect(list.json()).toEqual({ error: 'forbidden', scope: 'read', message: expect.stringMatching(/GET \/api\/v1\/queue needs the "read" scope; token "portal" has portal/) });
    for (const url of ['/api/v1/fallback', '/api/v1/stats', '/api/v1/portal/items']) expect((await admin.inject({ method: 'GET', url, headers: bearer('portal') })).statusCode).toBe(403);
    // The HEAD twin of a GET route is checked the same way.
    expect((await admin.inject({ method: 'HEAD', url: '/api/v1/queue', headers: bearer('portal') })).statusCode).toBe(403);
    expect((await admin.inject({ method: 'HEAD', url: '/api/v1/queue', headers: bearer('read') })).statusCode).toBe(200);
    expect(logEvents('admin-forbidden')[0]).toMatchObject({ actor: 'portal', route: 'GET /api/v1/queue', scope: 'read' });

    const { id } = await fallbackItem('dr.x@partner.test');
    const claim = await admin.inject({ method: 'POST', url: '/api/v1/portal/claim', headers: bearer('portal'), payload: { owner: 'ext' } });
    expect(claim.statusCode).toBe(200);
    expect(claim.json().items.map((i: { id: string }) => i.id)).toEqual([id]);
    const body = await admin.inject({ method: 'GET', url: `/api/v1/portal/items/${id}/body`, headers: bearer('portal') });
    expect(body.statusCode).toBe(200);
    expect(body.body).toBe(SECRET_BODY);
    expect((await admin.inject({ method: 'POST', url: `/api/v1/portal/items/${id}/ack`, headers: bearer('portal'), payload: { owner: 'ext' } })).statusCode).toBe(200);
    // Releasing or deleting the item is an operator's act, not the portal's.
    expect((await admin.inject({ method: 'DELETE', url: `/api/v1/fallback/${id}`, headers: bearer('portal') })).json()).toMatchObject({ error: 'forbidden', scope: 'operate' });
    await admin.close();
  });

  test('a read token (and a legacy token) cannot download a body: 403 naming content; a content token can', async () => {
    const admin = await app();
    const { id } = await fallbackItem('dr.y@partner.test');
    for (const name of ['read', 'legacy', 'operate', 'metrics']) {
      const refused = await admin.inject({ method: 'GET', url: `/api/v1/portal/items/${id}/body`, headers: bearer(name) });
      expect(refused.statusCode).toBe(403);
      expect(refused.json()).toMatchObject({ error: 'forbidden', scope: 'content', message: expect.stringContaining('"content", "portal"') });
      expect(refused.body).not.toContain('diagnosis');
    }
    const read = await admin.inject({ method: 'GET', url: `/api/v1/fallback/${id}`, headers: bearer('read') });
    expect(read.statusCode).toBe(200);
    const allowed = await admin.inject({ method: 'GET', url: `/api/v1/portal/items/${id}/body`, headers: bearer('content') });
    expect(allowed.statusCode).toBe(200);
    expect(allowed.headers['content-type']).toBe('message/rfc822');
    expect(allowed.body).toBe(SECRET_BODY);
    // content is bodies only: it does not list.
    expect((await admin.inject({ method: 'GET', url: '/api/v1/queue', headers: bearer('content') })).json()).toMatchObject({ scope: 'read' });
    await admin.close();
  });

  test('legacy tokens keep read, operate and metrics; they cannot claim for a portal', async () => {
    const admin = await app();
    const { id } = await fallbackItem('dr.z@partner.test');
    expect((await admin.inject({ method: 'GET', url: '/api/v1/queue', headers: bearer('legacy') })).statusCode).toBe(200);
    expect((await admin.inject({ method: 'GET', url: '/metrics', headers: bearer('legacy') })).statusCode).toBe(200);
    const released = await admin.inject({ method: 'POST', url: `/api/v1/fallback/${id}/release`, headers: bearer('legacy') });
    expect(released.statusCode).toBe(200);
    expect((await admin.inject({ method: 'POST', url: '/api/v1/portal/claim', headers: bearer('legacy'), payload: { owner: 'ext' } })).json()).toMatchObject({ error: 'forbidden', scope: 'portal' });
    await admin.close();
  });

  test('a body download is in the audit trail with the token name, item, queue id and recipient, never the content', async () => {
    const auditFile = path.join(dir, 'audit.log');
    const audit = createAuditLog(auditFile, silentLogger());
    const admin = await app({ audit });
    const { id, queueId } = await fallbackItem('dr.x@partner.test');
    expect((await admin.inject({ method: 'GET', url: `/api/v1/portal/items/${id}/body`, headers: bearer('content') })).statusCode).toBe(200);
    // A refused download is not a read.
    expect((await admin.inject({ method: 'GET', url: `/api/v1/portal/items/${id}/body`, headers: bearer('read') })).statusCode).toBe(403);
    await admin.close();
    await audit.close();
    const text = readFileSync(auditFile, 'utf8');
    const reads = text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, any>)
      .filter((l) => l.event === 'admin-action' && l.admin.action === 'content-read');
    expect(reads).toEqual([expect.objectContaining({ admin: { actor: 'content', action: 'content-read', id, queueId, recipient: 'dr.x@partner.test' } })]);
    expect(text).not.toMatch(/diagnosis|only the recipient/);
  });
});

describe('probes and metrics', () => {
  test('/readyz needs no token and then says only ready and version; details to read or metrics tokens', async () => {
    const admin = await app();
    const bare = await admin.inject({ method: 'GET', url: '/readyz' });
    expect(bare.statusCode).toBe(200);
    expect(bare.json()).toEqual({ ready: true, version: VERSION });
    for (const name of ['read', 'metrics', 'legacy']) {
      expect((await admin.inject({ method: 'GET', url: '/readyz', headers: bearer(name) })).json()).toEqual({
        ready: true,
        version: VERSION,
        checks: { store: { ok: true }, listeners: { ok: true, detail: 'smtp 127.0.0.1:25' } },
      });
    }
    expect((await admin.inject({ method: 'GET', url: '/readyz', headers: bearer('portal') })).json()).toEqual({ ready: true, version: VERSION });
    // A token that is given is checked: a wrong one is refused (and counted), not ignored.
    expect((await admin.inject({ method: 'GET', url: '/readyz', headers: { authorization: 'Bearer wrong-token-0123456789' } })).statusCode).toBe(401);
    await admin.close();

    const down = await app({ readiness: async () => ({ ready: false, checks: { store: { ok: false, detail: 'redis at 10.0.0.5:6379: ECONNREFUSED' } } }) });
    const notReady = await down.inject({ method: 'GET', url: '/readyz' });
    expect(notReady.statusCode).toBe(503);
    expect(notReady.json()).toEqual({ ready: false, version: VERSION });
    await down.close();
  });

  test('/healthz says status, version and the config digest, nothing about the process', async () => {
    const admin = await app({
      configStatus: () => ({ file: '/etc/sealgate/config.yaml', digest: 'sha256:abc', loadedAt: '2026-11-29T12:00:00.000Z', reloads: 2, failedReloads: 1, lastReloadAt: null }),
    });
    const health = await admin.inject({ method: 'GET', url: '/healthz' });
    expect(health.json()).toEqual({ status: 'ok', ok: true, version: VERSION, config: { digest: 'sha256:abc', loadedAt: '2026-11-29T12:00:00.000Z' } });
    await admin.close();
  });

  test('/metrics needs the metrics scope, unless admin.publicMetrics', async () => {
    const admin = await app();
    expect((await admin.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(401);
    const portal = await admin.inject({ method: 'GET', url: '/metrics', headers: bearer('portal') });
    expect(portal.statusCode).toBe(403);
    expect(portal.json()).toMatchObject({ error: 'forbidden', scope: 'metrics' });
    expect((await admin.inject({ method: 'GET', url: '/metrics', headers: bearer('read') })).statusCode).toBe(403);
    const metrics = await admin.inject({ method: 'GET', url: '/metrics', headers: bearer('metrics') });
    expect(metrics.statusCode).toBe(200);
    expect(metrics.body).toContain('# HELP');
    await admin.close();

    const open = await app({ config: configWith({ publicMetrics: true }) });
    expect((await open.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(200);
    // Only /metrics opens up.
    expect((await open.inject({ method: 'GET', url: '/api/v1/stats' })).statusCode).toBe(401);
    await open.close();
  });
});

describe('tokens follow the running config', () => {
  function liveConfig(first: Config): { live: LiveConfig; next: (config: Config) => void } {
    let upcoming = first;
    let n = 0;
    const loaded = (config: Config): LoadedConfig => ({ config, file: '/etc/sealgate/config.yaml', digest: `sha256:${n++}` });
    const live = new LiveConfig(loaded(first), () => loaded(upcoming));
    return { live, next: (config) => (upcoming = config) };
  }

  test('a reload that removes a token, changes scopes, opens /metrics or lowers the failure limit applies to the next request', async () => {
    const start = configWith();
    const { live, next } = liveConfig(start);
    const admin = await app({ config: start, live });
    expect((await admin.inject({ method: 'GET', url: '/api/v1/stats', headers: bearer('read') })).statusCode).toBe(200);
    expect((await admin.inject({ method: 'GET', url: '/api/v1/stats', headers: bearer('portal') })).statusCode).toBe(403);

    const changed = configWith({
      publicMetrics: true,
      tokens: [
        { name: 'portal', token: tokenOf('portal'), scopes: ['portal', 'read'] },
        { name: 'new', token: tokenOf('new'), scopes: ['operate'] },
      ],
    });
    next(changed);
    await live.reload();
    expect((await admin.inject({ method: 'GET', url: '/api/v1/stats', headers: bearer('read') })).statusCode).toBe(401);
    expect((await admin.inject({ method: 'GET', url: '/api/v1/stats', headers: bearer('portal') })).statusCode).toBe(200);
    expect((await admin.inject({ method: 'GET', url: '/api/v1/stats', headers: bearer('new') })).json()).toMatchObject({ scope: 'read' });
    expect((await admin.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(200);

    // admin.maxFailedAuthPerMinute follows too: from 10 down to 1, the second failure is throttled.
    const wrong = { authorization: 'Bearer wrong-token-0123456789' };
    next(configWith({ maxFailedAuthPerMinute: 1 }));
    await live.reload();
    expect((await admin.inject({ method: 'GET', url: '/api/v1/stats', headers: wrong, remoteAddress: '192.0.2.9' })).statusCode).toBe(401);
    expect((await admin.inject({ method: 'GET', url: '/api/v1/stats', headers: wrong, remoteAddress: '192.0.2.9' })).statusCode).toBe(429);
    await admin.close();
  });

  test('a token without scopes added by a reload is named in a warning', async () => {
    const start = configWith({ tokens: [{ name: 'ops', token: tokenOf('ops'), scopes: ['read'] }] });
    const { live, next } = liveConfig(start);
    const server = await startAdminServer({ config: { ...start, admin: { ...start.admin, port: 0 } }, live, store, policy: {} as PolicyRuntime, logger: logger() });
    try {
      expect(logEvents('admin-legacy-tokens')).toEqual([]);
      next(configWith({ tokens: [{ name: 'old-script', token: tokenOf('old-script') }] }));
      await live.reload();
      expect(logEvents('admin-legacy-tokens')).toEqual([expect.objectContaining({ level: 'warn', tokens: ['old-script'], scopes: ['read', 'operate', 'metrics'] })]);
    } finally {
      await server.close();
    }
  });
});

test('over a real socket: legacy tokens are named at start, /readyz answers without a token, /metrics does not', async () => {
  const config = configWith();
  const server = await startAdminServer({
    config: { ...config, admin: { ...config.admin, port: 0 } },
    store,
    policy: {} as PolicyRuntime,
    logger: logger(),
    metrics: { render: async () => ({ contentType: 'text/plain', body: '# HELP x\n' }) },
  });
  try {
    expect(server.host).toBe('127.0.0.1');
    const warning = logEvents('admin-legacy-tokens');
    expect(warning).toEqual([expect.objectContaining({ level: 'warn', tokens: ['legacy'], scopes: ['read', 'operate', 'metrics'] })]);
    expect(warning[0]!.msg).toContain('legacy');
    const base = `http://127.0.0.1:${server.port}`;
    const ready = await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(5_000) });
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ ready: true, version: VERSION });
    expect((await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(5_000) })).status).toBe(401);
    const forbidden = await fetch(`${base}/api/v1/queue`, { headers: bearer('portal'), signal: AbortSignal.timeout(5_000) });
    expect(forbidden.status).toBe(403);
    expect(await forbidden.json()).toMatchObject({ error: 'forbidden', scope: 'read' });
  } finally {
    await server.close();
  }
});
