import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config/schema';
import type { Logger } from '../log/logger';
import type { AdminActionEntry } from '../evidence/audit-log';
import type { EvidenceRecorder, EvidenceSubject } from '../evidence/recorder';
import type { PolicyRuntime } from '../policy';
import type { Store } from '../store/types';
import type { ScopeDeclaration, TokenIdentity } from './auth';

/** What the route modules need; built once by the server. */
export interface AdminContext {
  /** The running config (replaced by a reload; read it per request, do not keep parts of it). */
  readonly config: Config;
  store: Store;
  policy: PolicyRuntime;
  logger: Logger;
  /**
   * Records a state-changing action, or a read of message content, with who did it (the token's name), and the
   * message or fallback item it was on (`subject`: the evidence log's look-up keys). Resolves once the record is
   * durable in the evidence log: await it before answering 2xx.
   */
  recordAction(request: FastifyRequest, entry: Omit<AdminActionEntry, 'actor'>, subject?: EvidenceSubject): Promise<void>;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Name of the token the request authenticated with ('' before auth and on public routes). */
    actor: string;
    /** The token the request authenticated with, when it gave a valid one. */
    token: TokenIdentity | undefined;
  }
  interface FastifyContextConfig {
    /**
     * What the route needs (see RouteScope in auth.ts): every route declares one, e.g.
     * `app.get('/queue', { config: { scope: 'read' }, schema }, handler)`; a route without one is refused
     * when it is registered.
     */
    scope?: ScopeDeclaration;
  }
}

export function actionRecorder(evidence: Pick<EvidenceRecorder, 'recordAction'>): AdminContext['recordAction'] {
  return (request, entry, subject) => evidence.recordAction({ actor: request.actor, ...entry } as AdminActionEntry, subject, `admin:${request.actor}`);
}

export type Reply = FastifyReply;

/** Shared JSON-schema pieces for route definitions. */
export const idParams = {
  type: 'object',
  required: ['id'],
  additionalProperties: false,
  properties: { id: { type: 'string', minLength: 1, maxLength: 300 } },
} as const;

export const paging = {
  limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100, description: 'page size' },
  offset: { type: 'integer', minimum: 0, default: 0, description: 'entries to skip' },
} as const;

export const errorResponse = {
  type: 'object',
  properties: { error: { type: 'string' }, message: { type: 'string' }, field: { type: 'string' } },
} as const;
