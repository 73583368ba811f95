import type { FastifyInstance, FastifyReply } from 'fastify';
import { PORTAL_STATES, toPortalItemView, type ExtendBy, type PortalService } from '../../portal/service';
import type { PortalState } from '../../store/types';
import { idParams, paging, type AdminContext } from '../context';
import { DURATION_PATTERN, parseAdminDuration } from '../durations';

/** What the routes call on the built-in portal's service. */
export type PortalAdmin = Pick<PortalService, 'list' | 'show' | 'revoke' | 'restore' | 'purge' | 'resend' | 'extend' | 'release'>;

function notRunning(reply: FastifyReply) {
  return reply.code(503).send({ error: 'unavailable', message: 'the built-in portal is not running in this process (portal.enabled)' });
}

/**
 * The built-in portal's copies: list, show (metadata and audit trail, never content) and the life-cycle
 * operations. Thin callers of PortalService; each operation is recorded in the item's trail as admin.<op>
 * with the token's name, and in the audit file as portal-<op>. Listing and showing need `read`, the
 * operations `operate`. The external-portal routes (/portal/claim, /portal/items/:id/body,
 * /portal/items/:id/ack) are in fallback.ts.
 */
export function registerPortalItemRoutes(app: FastifyInstance, ctx: AdminContext, portal: PortalAdmin | undefined): void {
  app.get<{ Querystring: { state?: PortalState; limit: number; offset: number } }>(
    '/portal/items',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['portal'],
        summary: 'List the built-in portal’s items (metadata only; the `sealgate portal list --json` entries)',
        querystring: { type: 'object', additionalProperties: false, properties: { state: { type: 'string', enum: [...PORTAL_STATES] }, ...paging } },
      },
    },
    async (request, reply) => {
      if (!portal) return notRunning(reply);
      const q = request.query;
      const all = await portal.list(q.state === undefined ? {} : { state: q.state });
      return { items: all.slice(q.offset, q.offset + q.limit), total: all.length, limit: q.limit, offset: q.offset };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/portal/items/:id',
    { config: { scope: 'read' }, schema: { tags: ['portal'], summary: 'One portal item: metadata and its hash-chained audit trail (never content)', params: idParams } },
    async (request, reply) => {
      if (!portal) return notRunning(reply);
      return portal.show(request.params.id);
    },
  );

  const simple = [
    ['revoke', 'Stop the item’s link and sessions (reversible with restore)'],
    ['restore', 'Undo a revoke: back to the state the item had'],
    ['purge', 'Crypto-shred the copy for good'],
    ['resend', 'Send a new link; the old link stops working at once'],
    ['release', 'The recipient’s domain is compliant again: deliver the message by SMTP as a new message and shred the copy'],
  ] as const;
  for (const [op, summary] of simple) {
    app.post<{ Params: { id: string } }>(`/portal/items/:id/${op}`, { config: { scope: 'operate' }, schema: { tags: ['portal'], summary, params: idParams } }, async (request, reply) => {
      if (!portal) return notRunning(reply);
      const id = request.params.id;
      const actor = `admin:${request.actor}`;
      if (op === 'resend') {
        const { item, noticeQueueId } = await portal.resend(id, actor);
        await ctx.recordAction(request, { action: 'portal-resend', id, noticeQueueId }, { queueId: item.queueId });
        return { id, action: op, noticeQueueId, item: toPortalItemView(item) };
      }
      if (op === 'release') {
        const { item, queueId } = await portal.release(id, actor);
        await ctx.recordAction(request, { action: 'portal-release', id, newQueueId: queueId }, { queueId: item.queueId });
        return { id, action: op, queueId, item: toPortalItemView(item) };
      }
      const item = await portal[op](id, actor);
      await ctx.recordAction(request, { action: `portal-${op}`, id }, { queueId: item.queueId });
      return { id, action: op, item: toPortalItemView(item) };
    });
  }

  app.post<{ Params: { id: string }; Body: { until?: string; by?: string | number } }>(
    '/portal/items/:id/extend',
    {
      config: { scope: 'operate' },
      schema: {
        tags: ['portal'],
        summary: 'Move the expiry: to `until` (ISO 8601) or by `by` (seconds or "7d"); at most 365 days after creation',
        params: idParams,
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            until: { type: 'string', minLength: 1, maxLength: 64, description: 'new expiry, ISO 8601' },
            by: {
              anyOf: [
                { type: 'string', pattern: DURATION_PATTERN },
                { type: 'number', minimum: 1 },
              ],
              description: 'move the expiry later by this much: seconds or "12h", "7d"',
            },
          },
        },
      },
    },
    async (request, reply) => {
      if (!portal) return notRunning(reply);
      const { until, by } = request.body ?? {};
      if ((until === undefined) === (by === undefined)) return reply.code(400).send({ error: 'bad-request', message: 'give exactly one of until or by', field: 'until' });
      let change: ExtendBy;
      if (until !== undefined) {
        const at = Date.parse(until);
        if (!Number.isFinite(at)) return reply.code(400).send({ error: 'bad-request', message: 'body/until must be an ISO 8601 time', field: 'until' });
        change = { until: at };
      } else {
        const ms = parseAdminDuration(by!);
        if (!ms) return reply.code(400).send({ error: 'bad-request', message: 'body/by must be a positive duration', field: 'by' });
        change = { by: ms };
      }
      const item = await portal.extend(request.params.id, change, `admin:${request.actor}`);
      await ctx.recordAction(request, { action: 'portal-extend', id: item.id, expiresAt: new Date(item.expiresAt).toISOString() }, { queueId: item.queueId });
      return { id: item.id, action: 'extend', item: toPortalItemView(item) };
    },
  );
}
