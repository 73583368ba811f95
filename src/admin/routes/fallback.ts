import type { FastifyInstance } from 'fastify';
import { FALLBACK_STATES, FallbackService } from '../../fallback';
import type { FallbackState } from '../../store/types';
import { idParams, paging, type AdminContext } from '../context';
import { DURATION_PATTERN, parseAdminDuration } from '../durations';
import { toFallbackDetail, toFallbackEntry } from '../views';

const ownerSchema = { type: 'string', minLength: 1, maxLength: 200, description: 'the portal instance taking or holding the claim' } as const;

/** Thin HTTP callers of the fallback module (src/fallback); errors map to 404 / 409 in the server's handler. */
export function registerFallbackRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const fallback = new FallbackService(ctx.store);
  app.get<{ Querystring: { state?: FallbackState; limit: number; offset: number } }>(
    '/fallback',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['fallback'],
        summary: 'List fallback (secure portal) items (the `sealgate fallback list --json` entries)',
        querystring: { type: 'object', additionalProperties: false, properties: { state: { type: 'string', enum: [...FALLBACK_STATES] }, ...paging } },
      },
    },
    async (request) => {
      const q = request.query;
      const { items, total } = await fallback.page({ state: q.state, limit: q.limit, offset: q.offset });
      return { items: items.map(toFallbackEntry), total, limit: q.limit, offset: q.offset };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/fallback/:id',
    { config: { scope: 'read' }, schema: { tags: ['fallback'], summary: 'One fallback item with its claim and evidence', params: idParams } },
    async (request) => toFallbackDetail(await fallback.show(request.params.id)),
  );

  app.post<{ Params: { id: string } }>(
    '/fallback/:id/release',
    { config: { scope: 'operate' }, schema: { tags: ['fallback'], summary: 'Put the recipient back into delivery (refused once the portal acknowledged it)', params: idParams } },
    async (request) => {
      const item = await fallback.release(request.params.id);
      ctx.recordAction(request, { action: 'fallback-release', id: item.id, queueId: item.queueId });
      return { id: item.id, action: 'release', queueId: item.queueId };
    },
  );

  app.delete<{ Params: { id: string } }>('/fallback/:id', { config: { scope: 'operate' }, schema: { tags: ['fallback'], summary: 'Delete a fallback item', params: idParams } }, async (request) => {
    const item = await fallback.delete(request.params.id);
    ctx.recordAction(request, { action: 'fallback-delete', id: item.id, queueId: item.queueId });
    return { id: item.id, action: 'delete' };
  });

  registerPortalRoutes(app, ctx, fallback);
}

/**
 * The secure portal's side: claim items for a while, download each body, acknowledge the handover. The
 * `portal` scope is these three routes and nothing else; the body download also serves `content`.
 */
function registerPortalRoutes(app: FastifyInstance, ctx: AdminContext, fallback: FallbackService): void {
  app.post<{ Body: { owner: string; limit: number; lease?: string | number } }>(
    '/portal/claim',
    {
      config: { scope: 'portal' },
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
              anyOf: [
                { type: 'string', pattern: DURATION_PATTERN },
                { type: 'number', minimum: 1 },
              ],
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
      const items = await fallback.claim(owner, limit, leaseMs);
      if (items.length > 0) ctx.recordAction(request, { action: 'portal-claim', id: items.map((i) => i.id).join(','), owner, leaseMs });
      return { items: items.map(toFallbackDetail) };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/portal/items/:id/body',
    {
      // An operator allowed to read content, or the external portal's handover.
      config: { scope: ['content', 'portal'] },
      schema: {
        tags: ['portal'],
        summary: 'The original message, byte for byte as stored (message/rfc822)',
        params: idParams,
        produces: ['message/rfc822'],
      },
    },
    async (request, reply) => {
      const { item, body } = await fallback.openBody(request.params.id);
      // Who read which message, on disk before the first byte leaves; never the content itself.
      try {
        ctx.recordAction(request, { action: 'content-read', id: item.id, queueId: item.queueId, recipient: item.recipient });
      } catch (err) {
        body.destroy();
        throw err;
      }
      return reply.type('message/rfc822').header('content-disposition', `attachment; filename="${item.queueId}.eml"`).send(body);
    },
  );

  app.post<{ Params: { id: string }; Body: { owner: string } }>(
    '/portal/items/:id/ack',
    {
      config: { scope: 'portal' },
      schema: {
        tags: ['portal'],
        summary: 'Acknowledge that the portal took the message over (only by the claim owner)',
        params: idParams,
        body: { type: 'object', required: ['owner'], additionalProperties: false, properties: { owner: ownerSchema } },
      },
    },
    async (request) => {
      await fallback.ack(request.params.id, request.body.owner);
      ctx.recordAction(request, { action: 'portal-ack', id: request.params.id, owner: request.body.owner });
      return { id: request.params.id, action: 'ack' };
    },
  );
}
