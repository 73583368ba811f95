import type { FastifyInstance } from 'fastify';
import { NotFoundError, type FallbackState } from '../../store/types';
import { applyFallbackAction } from '../actions';
import { idParams, paging, type AdminContext } from '../context';
import { DURATION_PATTERN, parseAdminDuration } from '../durations';
import { toFallbackDetail, toFallbackEntry } from '../views';

const FALLBACK_STATES: FallbackState[] = ['ready', 'claimed', 'acked'];

const ownerSchema = { type: 'string', minLength: 1, maxLength: 200, description: 'the portal instance taking or holding the claim' } as const;

export function registerFallbackRoutes(app: FastifyInstance, ctx: AdminContext): void {
  app.get<{ Querystring: { state?: FallbackState; limit: number; offset: number } }>(
    '/fallback',
    {
      schema: {
        tags: ['fallback'],
        summary: 'List fallback (secure portal) items (the `sealgate fallback list --json` entries)',
        querystring: { type: 'object', additionalProperties: false, properties: { state: { type: 'string', enum: FALLBACK_STATES }, ...paging } },
      },
    },
    async (request) => {
      const q = request.query;
      const all = await ctx.store.listFallback({ state: q.state });
      return { items: all.slice(q.offset, q.offset + q.limit).map(toFallbackEntry), total: all.length, limit: q.limit, offset: q.offset };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/fallback/:id',
    { schema: { tags: ['fallback'], summary: 'One fallback item with its claim and evidence', params: idParams } },
    async (request, reply) => {
      const item = await ctx.store.getFallback(request.params.id);
      if (!item) return reply.code(404).send({ error: 'not-found', message: `no fallback item ${request.params.id}` });
      return toFallbackDetail(item);
    },
  );

  app.post<{ Params: { id: string } }>(
    '/fallback/:id/release',
    { schema: { tags: ['fallback'], summary: 'Put the recipient back into delivery (refused once the portal acknowledged it)', params: idParams } },
    async (request) => {
      const item = await applyFallbackAction(ctx.store, 'release', request.params.id);
      ctx.recordAction(request, { action: 'fallback-release', id: item.id, queueId: item.queueId });
      return { id: item.id, action: 'release', queueId: item.queueId };
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/fallback/:id',
    { schema: { tags: ['fallback'], summary: 'Delete a fallback item', params: idParams } },
    async (request) => {
      const item = await applyFallbackAction(ctx.store, 'delete', request.params.id);
      ctx.recordAction(request, { action: 'fallback-delete', id: item.id, queueId: item.queueId });
      return { id: item.id, action: 'delete' };
    },
  );

  registerPortalRoutes(app, ctx);
}

/** The secure portal's side: claim items for a while, download each body, acknowledge the handover. */
function registerPortalRoutes(app: FastifyInstance, ctx: AdminContext): void {
  app.post<{ Body: { owner: string; limit: number; lease?: string | number } }>(
    '/portal/claim',
    {
      schema: {
        tags: ['portal'],
        summary: 'Claim up to `limit` ready items (or items whose claim expired) for `lease`',
        body: {
          type: 'object',
          required: ['owner'],
          additionalProperties: false,
          properties: {
            owner: ownerSchema,
            limit: { type: 'integer', minimum: 1, maximum: 100, default: 10 },
            lease: {
              anyOf: [{ type: 'string', pattern: DURATION_PATTERN }, { type: 'number', minimum: 1 }],
              description: 'claim duration: seconds or "30s", "5m"; default fallback.claimLease',
            },
          },
        },
      },
    },
    async (request, reply) => {
      const { owner, limit, lease } = request.body;
      const leaseMs = lease === undefined ? ctx.config.fallback.claimLease : parseAdminDuration(lease);
      if (!leaseMs) return reply.code(400).send({ error: 'bad-request', message: 'body/lease must be a positive duration', field: 'lease' });
      const items = await ctx.store.claimFallback(owner, limit, leaseMs);
      if (items.length > 0) ctx.recordAction(request, { action: 'portal-claim', id: items.map((i) => i.id).join(','), owner, leaseMs });
      return { items: items.map(toFallbackDetail) };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/portal/items/:id/body',
    {
      schema: {
        tags: ['portal'],
        summary: 'The original message, byte for byte as stored (message/rfc822)',
        params: idParams,
        produces: ['message/rfc822'],
      },
    },
    async (request, reply) => {
      const item = await ctx.store.getFallback(request.params.id);
      if (!item) throw new NotFoundError(`no fallback item ${request.params.id}`);
      const body = await ctx.store.openBody(item.queueId);
      return reply.type('message/rfc822').header('content-disposition', `attachment; filename="${item.queueId}.eml"`).send(body);
    },
  );

  app.post<{ Params: { id: string }; Body: { owner: string } }>(
    '/portal/items/:id/ack',
    {
      schema: {
        tags: ['portal'],
        summary: 'Acknowledge that the portal took the message over (only by the claim owner)',
        params: idParams,
        body: { type: 'object', required: ['owner'], additionalProperties: false, properties: { owner: ownerSchema } },
      },
    },
    async (request) => {
      await ctx.store.ackFallback(request.params.id, request.body.owner);
      ctx.recordAction(request, { action: 'portal-ack', id: request.params.id, owner: request.body.owner });
      return { id: request.params.id, action: 'ack' };
    },
  );
}
