import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { AddressInfo } from 'node:net';
import type { ConfigStatus, ReloadResult } from '../config/live';
import type { Config } from '../config/schema';
import { VERSION } from '../config/version';
import type { Logger } from '../log/logger';
import type { AuditLog } from '../evidence/audit-log';
import type { PolicyRuntime } from '../policy';
import { LeaseLostError, NotFoundError, StoreUnavailableError, type Store } from '../store/types';
import { InvalidStateError } from './actions';
import { isLoopbackHost, tokenMatcher } from './auth';
import { actionRecorder, type AdminContext } from './context';
import { checkLive, type Readiness } from './health';
import type { Metrics } from './metrics';
import { registerFallbackRoutes } from './routes/fallback';
import { registerOpsRoutes } from './routes/ops';
import { registerPortalItemRoutes, type PortalAdmin } from './routes/portal-items';
import { registerQueueRoutes } from './routes/queue';

export interface AdminServerOptions {
  config: Config;
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
const PUBLIC_PATHS = new Set(['/healthz']);
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
    options.logger.warn({ event: 'admin-no-tokens' }, 'the admin API has no tokens: every route but /healthz answers 401 until admin.tokens or SEALGATE_ADMIN_TOKEN is set');
  }
  return { app, host: address.address, port: address.port, close: () => app.close() };
}

/** The Fastify app without a listener (tests use app.inject()). */
export async function buildAdminApp(options: AdminServerOptions): Promise<FastifyInstance> {
  const { config, store, logger } = options;
  const app = Fastify({
    logger: false,
    bodyLimit: MAX_BODY_BYTES,
    // Unknown properties are refused (400), not silently dropped.
    ajv: { customOptions: { removeAdditional: false, allErrors: false } },
  });
  const authenticate = tokenMatcher(config.admin.tokens);
  const failedAuth = await failedAuthLimiter(app, config.admin.maxFailedAuthPerMinute);

  app.decorateRequest('actor', '');
  app.addHook('onRequest', async (request, reply) => {
    // The matched route, not the raw URL: encoded or odd spellings of a public path still need a token.
    if (PUBLIC_PATHS.has(request.routeOptions.url ?? '')) return;
    // An address over the limit is refused before its token is looked at, so a guessed token cannot be confirmed.
    const blocked = await failedAuth.check(request);
    if (blocked !== undefined) return tooManyFailures(reply, blocked);
    const actor = authenticate(request.headers.authorization);
    if (actor === undefined) {
      const after = await failedAuth.count(request);
      if (after !== undefined) {
        logger.warn({ event: 'admin-auth-throttled', ip: request.ip, retryAfter: after }, 'too many failed admin token checks from this address');
        return tooManyFailures(reply, after);
      }
      return reply.code(401).header('www-authenticate', 'Bearer realm="sealgate-admin"').send({ error: 'unauthorized', message: 'a valid admin token is required (Authorization: Bearer <token>)' });
    }
    request.actor = actor;
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

  const ctx: AdminContext = { config, store, policy: options.policy, logger, recordAction: actionRecorder(options.audit, logger) };
  await app.register(
    async (api) => {
      registerQueueRoutes(api, ctx);
      registerFallbackRoutes(api, ctx, options.portal);
      registerOpsRoutes(api, ctx);
      registerPortalItemRoutes(api, ctx, options.portal);
    },
    { prefix: API_PREFIX },
  );

  app.get('/healthz', { schema: { tags: ['health'], summary: 'The process is up (no token needed)', security: [] } }, async () => {
    const status = options.configStatus?.();
    return { status: 'ok', version: VERSION, ...checkLive(), ...(status ? { config: { digest: status.digest, loadedAt: status.loadedAt } } : {}) };
  });
  app.get('/readyz', { schema: { tags: ['health'], summary: 'The store answers and the SMTP listeners are up' } }, async (_request, reply) => {
    const readiness = options.readiness ? await options.readiness() : await pingOnly(store);
    return reply.code(readiness.ready ? 200 : 503).send(readiness);
  });
  if (options.metrics) {
    const metrics = options.metrics;
    app.get('/metrics', { schema: { tags: ['metrics'], summary: 'Prometheus metrics' } }, async (_request, reply) => {
      const { contentType, body } = await metrics.render();
      return reply.type(contentType).send(body);
    });
  }
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app;
}

/**
 * Failed token checks per client address in a fixed one-minute window (@fastify/rate-limit's local
 * store, counting only failures): up to `max` failures get 401, the next one gets 429, and from then
 * on every request from that address but /healthz gets 429 until the window that began with its
 * first failure is over, a right token included. Refused requests do not extend the window.
 */
async function failedAuthLimiter(app: FastifyInstance, max: number) {
  await app.register(rateLimit, { global: false, max, timeWindow: FAILED_AUTH_WINDOW_MS, cache: FAILED_AUTH_ADDRESSES });
  const limiter = app.createRateLimit();
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
