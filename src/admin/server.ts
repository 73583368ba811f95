import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { AddressInfo } from 'node:net';
import type { ConfigStatus, LiveConfig, ReloadResult } from '../config/live';
import type { Config } from '../config/schema';
import { VERSION } from '../config/version';
import type { Logger } from '../log/logger';
import type { AuditLog } from '../evidence/audit-log';
import type { PolicyRuntime } from '../policy';
import { LeaseLostError, NotFoundError, StoreUnavailableError, type Store } from '../store/types';
import { InvalidStateError } from './actions';
import { LEGACY_ADMIN_SCOPES, isLoopbackHost, isScopeDeclaration, legacyTokens, liveTokenMatcher, missingScope, type RouteScope, type ScopeDeclaration } from './auth';
import { actionRecorder, type AdminContext } from './context';
import type { Readiness } from './health';
import type { Metrics } from './metrics';
import { registerConfigRoutes } from './routes/config';
import { registerEvidenceRoutes } from './routes/evidence';
import { registerFallbackRoutes } from './routes/fallback';
import { registerOpsRoutes } from './routes/ops';
import { registerPortalItemRoutes, type PortalAdmin } from './routes/portal-items';
import { registerQueueRoutes } from './routes/queue';
import { registerReportRoutes } from './routes/reports';

export interface AdminServerOptions {
  /** The config at start: the listener's address, and everything else when `live` is not given. */
  config: Config;
  /** The running config; tokens, scopes and limits are read from `live.current` on every request, so a reload applies at once. */
  live?: Pick<LiveConfig, 'current' | 'onReload'>;
  store: Store;
  policy: PolicyRuntime;
  logger: Logger;
  audit?: AuditLog;
  metrics?: Pick<Metrics, 'render'>;
  /** /readyz; without it, readiness is "the store answers a ping". */
  readiness?: () => Promise<Readiness>;
  /** The running config's digest and load time (/healthz, /api/v1/config). */
  configStatus?: () => ConfigStatus;
  /** Re-reads and applies the config file (POST /api/v1/reload). */
  reload?: () => Promise<ReloadResult>;
  /** The built-in portal's service (/api/v1/portal/items); without it those routes answer 503. */
  portal?: PortalAdmin;
}

export interface AdminServer {
  app: FastifyInstance;
  host: string;
  port: number;
  close(): Promise<void>;
}

export const API_PREFIX = '/api/v1';
/** A token with any of these sees which readiness check failed. */
const READINESS_DETAIL_SCOPES = ['read', 'metrics'] as const;
const MAX_BODY_BYTES = 64 * 1024;
/** Window of admin.maxFailedAuthPerMinute. */
const FAILED_AUTH_WINDOW_MS = 60_000;
/** Client addresses the failed-token counter remembers at once (least recently used go first). */
const FAILED_AUTH_ADDRESSES = 10_000;

/** Thrown when the admin listener's settings are unsafe (e.g. reachable from the network without a token). */
export class AdminConfigError extends Error {
  override name = 'AdminConfigError';
}

/** Refuses an admin listener reachable from the network without any token. */
export function assertAdminListenerSafe({ host, tokens }: Pick<Config['admin'], 'host' | 'tokens'>): void {
  if (!isLoopbackHost(host) && tokens.length === 0) {
    throw new AdminConfigError(`admin.host is ${host}, which is not a loopback address, and no admin token is configured: set admin.tokens or SEALGATE_ADMIN_TOKEN, or bind admin.host to 127.0.0.1`);
  }
}

/** Starts the admin HTTP listener (config.admin); refuses a non-loopback address without any token. */
export async function startAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const { host, port, tokens } = options.config.admin;
  assertAdminListenerSafe(options.config.admin);
  const app = await buildAdminApp(options);
  await app.listen({ host, port });
  const address = app.server.address() as AddressInfo;
  options.logger.info({ event: 'admin-started', host: address.address, port: address.port, tokens: tokens.map((t) => t.name) }, 'admin API listening');
  if (tokens.length === 0) {
    options.logger.warn({ event: 'admin-no-tokens' }, 'the admin API has no tokens: every route but /healthz and /readyz answers 401 until admin.tokens or SEALGATE_ADMIN_TOKEN is set');
  }
  warnLegacyTokens(options.config, options.logger);
  options.live?.onReload({ name: 'admin tokens', prepare: (next) => () => warnLegacyTokens(next, options.logger) });
  return { app, host: address.address, port: address.port, close: () => app.close() };
}

/** Names the tokens configured without `scopes`, which get the scopes every token had before scopes existed. */
function warnLegacyTokens(config: Config, logger: Logger): void {
  const legacy = legacyTokens(config.admin.tokens);
  if (legacy.length === 0) return;
  logger.warn(
    { event: 'admin-legacy-tokens', tokens: legacy, scopes: [...LEGACY_ADMIN_SCOPES] },
    `admin tokens without scopes get ${LEGACY_ADMIN_SCOPES.join(', ')}: ${legacy.join(', ')}; give each its scopes (an external portal's token needs portal, reading bodies needs content)`,
  );
}

export interface AdminRoute {
  method: string;
  url: string;
  scope: ScopeDeclaration;
}

const declaredRoutes = new WeakMap<FastifyInstance, AdminRoute[]>();

/** Every route of an app from buildAdminApp with the scope it declared. */
export function adminRoutes(app: FastifyInstance): readonly AdminRoute[] {
  return declaredRoutes.get(app) ?? [];
}

/** The Fastify app without a listener (tests use app.inject()). */
export async function buildAdminApp(options: AdminServerOptions): Promise<FastifyInstance> {
  const { store, logger } = options;
  const live = options.live;
  const current = (): Config => live?.current ?? options.config;
  const app = Fastify({
    logger: false,
    bodyLimit: MAX_BODY_BYTES,
    // Unknown properties are refused (400), not silently dropped.
    ajv: { customOptions: { removeAdditional: false, allErrors: false } },
  });
  const authenticate = liveTokenMatcher(() => current().admin.tokens);
  const failedAuth = await failedAuthLimiter(app, () => current().admin.maxFailedAuthPerMinute);

  // Every route declares what it needs, once, where it is defined; one that does not is a programming error.
  const routes: AdminRoute[] = [];
  declaredRoutes.set(app, routes);
  app.addHook('onRoute', (route) => {
    const scope = route.config?.scope;
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    if (!isScopeDeclaration(scope)) throw new AdminConfigError(`admin route ${methods.join(',')} ${route.url} declares no valid scope (config: { scope })`);
    for (const method of methods) routes.push({ method, url: route.url, scope });
  });

  app.decorateRequest('actor', '');
  app.decorateRequest('token', undefined);
  app.addHook('onRequest', async (request, reply) => {
    // The matched route's declaration, not the raw URL: odd spellings of a public path are other routes (or none).
    // No route (404): a valid token first, so unknown paths tell nothing without one.
    const declared = request.routeOptions.url === undefined ? 'token' : request.routeOptions.config.scope;
    const scope: RouteScope | undefined = typeof declared === 'function' ? declared(current().admin) : declared;
    if (scope === undefined) return forbidden(reply, 'this route declares no scope, so no token may use it', 'undeclared');
    if (scope === 'public') return;
    if (scope === 'optional' && request.headers.authorization === undefined) return;
    // An address over the limit is refused before its token is looked at, so a guessed token cannot be confirmed.
    const blocked = await failedAuth.check(request);
    if (blocked !== undefined) return tooManyFailures(reply, blocked);
    const token = authenticate(request.headers.authorization);
    if (token === undefined) {
      const after = await failedAuth.count(request);
      if (after !== undefined) {
        logger.warn({ event: 'admin-auth-throttled', ip: request.ip, retryAfter: after }, 'too many failed admin token checks from this address');
        return tooManyFailures(reply, after);
      }
      return reply.code(401).header('www-authenticate', 'Bearer realm="sealgate-admin"').send({ error: 'unauthorized', message: 'a valid admin token is required (Authorization: Bearer <token>)' });
    }
    request.actor = token.name;
    request.token = token;
    if (scope === 'token' || scope === 'optional') return;
    const missing = missingScope(scope, token.scopes);
    if (missing === undefined) return;
    const needs = typeof scope === 'string' ? `the "${scope}" scope` : `one of the scopes ${scope.map((s) => `"${s}"`).join(', ')}`;
    const route = `${request.method} ${request.routeOptions.url}`;
    logger.warn({ event: 'admin-forbidden', actor: token.name, route, scope: missing }, 'admin token lacks the scope this route needs');
    return forbidden(reply, `${route} needs ${needs}; token "${token.name}" has ${[...token.scopes].join(', ')}`, missing);
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error.validation) {
      const first = error.validation[0];
      const params = first?.params as { missingProperty?: string; additionalProperty?: string } | undefined;
      const path = first?.instancePath.replace(/^\//, '').replace(/\//g, '.') ?? '';
      const field = params?.missingProperty ?? params?.additionalProperty ?? path;
      const message = params?.additionalProperty ? `${error.validationContext ?? 'request'}: unknown field ${field}` : error.message;
      return reply.code(400).send({ error: 'bad-request', message, field });
    }
    if (error instanceof NotFoundError) return reply.code(404).send({ error: 'not-found', message: error.message });
    if (error instanceof InvalidStateError) return reply.code(409).send({ error: 'conflict', message: error.message });
    if (error instanceof LeaseLostError) return reply.code(409).send({ error: 'conflict', message: error.message });
    if (error instanceof StoreUnavailableError) return reply.code(503).send({ error: 'unavailable', message: error.message });
    if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
      return reply.code(error.statusCode).send({ error: 'bad-request', message: error.message });
    }
    logger.error({ event: 'admin-error', method: request.method, route: request.routeOptions.url, err: error.message }, 'admin request failed');
    return reply.code(500).send({ error: 'internal', message: 'internal error (see the relay log)' });
  });
  app.setNotFoundHandler((request, reply) => reply.code(404).send({ error: 'not-found', message: `no route ${request.method} ${request.url.split('?')[0]}` }));

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'Sealgate admin API', version: '1' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });

  const ctx: AdminContext = {
    get config() {
      return current();
    },
    store,
    policy: options.policy,
    logger,
    recordAction: actionRecorder(options.audit, logger),
  };
  await app.register(
    async (api) => {
      registerQueueRoutes(api, ctx);
      registerFallbackRoutes(api, ctx, options.portal);
      registerOpsRoutes(api, ctx);
      registerEvidenceRoutes(api, ctx);
      registerPortalItemRoutes(api, ctx, options.portal);
      registerReportRoutes(api, ctx);
      const { configStatus, reload } = options;
      registerConfigRoutes(api, ctx, configStatus && reload ? { status: configStatus, reload } : undefined);
    },
    { prefix: API_PREFIX },
  );

  // Liveness for anyone: that the process answers, its version and which config it runs; nothing else.
  app.get('/healthz', { config: { scope: 'public' }, schema: { tags: ['health'], summary: 'The process is up (no token needed)', security: [] } }, async () => {
    const status = options.configStatus?.();
    return { status: 'ok', ok: true, version: VERSION, ...(status ? { config: { digest: status.digest, loadedAt: status.loadedAt } } : {}) };
  });
  // Probes need no token; which check failed is shown only to a token with read or metrics.
  app.get(
    '/readyz',
    { config: { scope: 'optional' }, schema: { tags: ['health'], summary: 'The store answers and the SMTP listeners are up (no token needed; details with read or metrics)', security: [] } },
    async (request, reply) => {
      const readiness = options.readiness ? await options.readiness() : await pingOnly(store);
      const details = request.token !== undefined && missingScope(READINESS_DETAIL_SCOPES, request.token.scopes) === undefined;
      return reply.code(readiness.ready ? 200 : 503).send(details ? { ...readiness, version: VERSION } : { ready: readiness.ready, version: VERSION });
    },
  );
  if (options.metrics) {
    const metrics = options.metrics;
    app.get(
      '/metrics',
      {
        config: { scope: (admin) => (admin.publicMetrics ? 'public' : 'metrics') },
        schema: { tags: ['metrics'], summary: 'Prometheus metrics (the metrics scope, or none with admin.publicMetrics)' },
      },
      async (_request, reply) => {
        const { contentType, body } = await metrics.render();
        return reply.type(contentType).send(body);
      },
    );
  }
  app.get('/openapi.json', { config: { scope: 'token' }, schema: { hide: true } }, async () => app.swagger());
  return app;
}

/**
 * Failed token checks per client address in a fixed one-minute window (@fastify/rate-limit's local
 * store, counting only failures): up to `max` failures get 401, the next one gets 429, and from then
 * on every request from that address but /healthz gets 429 until the window that began with its
 * first failure is over, a right token included. Refused requests do not extend the window.
 */
async function failedAuthLimiter(app: FastifyInstance, max: () => number) {
  await app.register(rateLimit, { global: false, max: 1, timeWindow: FAILED_AUTH_WINDOW_MS, cache: FAILED_AUTH_ADDRESSES });
  const limiter = app.createRateLimit({ max: () => max() });
  const seconds = (ttlInSeconds: number): number => Math.max(1, ttlInSeconds);
  return {
    /** Seconds until this address may try again, or undefined when it is not blocked. */
    check: async (request: FastifyRequest): Promise<number | undefined> => {
      const state = await limiter(request, { increment: false });
      return !state.isAllowed && state.isExceeded ? seconds(state.ttlInSeconds) : undefined;
    },
    /** Counts one failed check; seconds to wait when this failure is over the limit. */
    count: async (request: FastifyRequest): Promise<number | undefined> => {
      const state = await limiter(request);
      return !state.isAllowed && state.isExceeded ? seconds(state.ttlInSeconds) : undefined;
    },
  };
}

function forbidden(reply: FastifyReply, message: string, scope: string): FastifyReply {
  return reply.code(403).send({ error: 'forbidden', message, scope });
}

function tooManyFailures(reply: FastifyReply, retryAfterSeconds: number): FastifyReply {
  return reply
    .code(429)
    .header('retry-after', String(retryAfterSeconds))
    .send({ error: 'too-many-requests', message: `too many failed authentication attempts from this address, retry in ${retryAfterSeconds} s` });
}

async function pingOnly(store: Store): Promise<Readiness> {
  try {
    await store.ping();
    return { ready: true, checks: { store: { ok: true } } };
  } catch (err) {
    return { ready: false, checks: { store: { ok: false, detail: (err as Error).message } } };
  }
}
