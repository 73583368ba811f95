import type { FastifyInstance } from 'fastify';
import { fallbackSubject } from '../../evidence/recorder';
import { FALLBACK_STATES, FallbackService } from '../../fallback';
import type { FallbackFilter, FallbackState } from '../../store/types';
import { releaseFallbackSelection, type PortalOwner } from '../actions';
import { idParams, paging, type AdminContext } from '../context';
import { DURATION_PATTERN, parseAdminDuration } from '../durations';
import { parseSinceValue, routeScope } from '../selection';
import { toFallbackDetail, toFallbackEntry } from '../views';

const READ = routeScope('read');
const OPERATE = routeScope('operate');

/** The fallback selection: recipient domain, recipient, diverted since (ISO time or an age such as "2h"). */
const fallbackSelection = {
  domain: { type: 'string', minLength: 1, maxLength: 253 },
  recipient: { type: 'string', minLength: 1, maxLength: 320 },
  since: { type: 'string', minLength: 1, maxLength: 40, description: 'diverted at or after this ISO 8601 time, or within this age: "2h", "7d"' },
} as const;

interface FallbackQuery {
  domain?: string;
  recipient?: string;
  since?: string;
}

/** The store filter, or the message of a 400 when `since` is neither a time nor an age. */
function toFallbackFilter(q: FallbackQuery): FallbackFilter | string {
  const filter: FallbackFilter = {};
  if (q.domain !== undefined) filter.domain = q.domain.toLowerCase();
  if (q.recipient !== undefined) filter.recipient = q.recipient;
  if (q.since !== undefined) {
    const at = parseSinceValue(q.since);
    if (at === undefined) return 'since must be an ISO 8601 time or an age such as "2h" or "7d"';
    filter.since = at;
  }
  return filter;
}

const ownerSchema = { type: 'string', minLength: 1, maxLength: 200, description: 'the portal instance taking or holding the claim' } as const;

/** Thin HTTP callers of the fallback module (src/fallback); errors map to 404 / 409 in the server's handler. */
export function registerFallbackRoutes(app: FastifyInstance, ctx: AdminContext, portal?: PortalOwner): void {
  const fallback = new FallbackService(ctx.store);
  app.get<{ Querystring: FallbackQuery & { state?: FallbackState; limit: number; offset: number } }>(
    '/fallback',
    {
      config: READ,
      schema: {
        tags: ['fallback'],
        summary: 'List fallback (secure portal) items (the `sealgate fallback list --json` entries), filtered and paged',
        querystring: { type: 'object', additionalProperties: false, properties: { state: { type: 'string', enum: [...FALLBACK_STATES] }, ...fallbackSelection, ...paging } },
      },
    },
    async (request, reply) => {
      const q = request.query;
      const filter = toFallbackFilter(q);
      if (typeof filter === 'string') return reply.code(400).send({ error: 'bad-request', message: filter, field: 'since' });
      const { items, total } = await fallback.page({ ...filter, state: q.state, limit: q.limit, offset: q.offset });
      const next = q.offset + q.limit < total ? q.offset + q.limit : null;
      return { items: items.map(toFallbackEntry), total, limit: q.limit, offset: q.offset, nextOffset: next };
    },
  );

  app.post<{ Body: { selection: FallbackQuery } }>(
    '/fallback/actions/release',
    {
      config: OPERATE,
      schema: {
        tags: ['fallback'],
        summary: 'Put every fallback item of a selection (e.g. a domain whose TLS is fixed) back into delivery; built-in portal copies are released (handed over) or withdrawn (not yet handed over)',
        body: {
          type: 'object',
          required: ['selection'],
          additionalProperties: false,
          properties: { selection: { type: 'object', additionalProperties: false, minProperties: 1, properties: fallbackSelection } },
        },
      },
    },
    async (request, reply) => {
      const filter = toFallbackFilter(request.body.selection);
      if (typeof filter === 'string') return reply.code(400).send({ error: 'bad-request', message: filter, field: 'selection/since' });
      const actor = `admin:${request.actor}`;
      const outcome = await releaseFallbackSelection(ctx.store, filter, portal, actor, (entry) =>
        ctx.recordAction(
          request,
          entry.via === 'portal'
            ? { action: 'portal-release', id: entry.id, newQueueId: entry.newQueueId, bulk: true }
            : { action: 'fallback-release', id: entry.id, queueId: entry.queueId, bulk: true, ...(entry.withdrawn ? { portalCopy: 'purged' } : {}) },
          { queueId: entry.queueId, recipient: entry.recipient },
        ),
      );
      await ctx.recordAction(request, {
        action: 'fallback-bulk-release',
        id: 'selection',
        selection: outcome.selection,
        matched: outcome.matched,
        affected: outcome.released.length,
        skipped: outcome.skipped.length,
      });
      return outcome;
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
      await ctx.recordAction(request, { action: 'fallback-release', id: item.id, queueId: item.queueId }, fallbackSubject(item));
      return { id: item.id, action: 'release', queueId: item.queueId };
    },
  );

  app.delete<{ Params: { id: string } }>('/fallback/:id', { config: { scope: 'operate' }, schema: { tags: ['fallback'], summary: 'Delete a fallback item', params: idParams } }, async (request) => {
    const item = await fallback.delete(request.params.id);
    await ctx.recordAction(request, { action: 'fallback-delete', id: item.id, queueId: item.queueId }, fallbackSubject(item));
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
      if (items.length > 0) await ctx.recordAction(request, { action: 'portal-claim', id: items.map((i) => i.id).join(','), owner, leaseMs });
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
        await ctx.recordAction(request, { action: 'content-read', id: item.id, queueId: item.queueId, recipient: item.recipient }, fallbackSubject(item));
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
      await ctx.recordAction(request, { action: 'portal-ack', id: request.params.id, owner: request.body.owner });
      return { id: request.params.id, action: 'ack' };
    },
  );
}
