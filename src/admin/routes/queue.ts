import type { FastifyInstance } from 'fastify';
import { JOB_STATES, type JobState } from '../../store/types';
import { applyMessageAction, type MessageAction } from '../actions';
import { idParams, paging, type AdminContext } from '../context';
import { DURATION_PATTERN, parseAdminDuration } from '../durations';
import { toListEntry, toMessageDetail } from '../views';

interface ListQuery {
  state?: JobState;
  domain?: string;
  sender?: string;
  olderThan?: string;
  limit: number;
  offset: number;
}

export function registerQueueRoutes(app: FastifyInstance, ctx: AdminContext): void {
  app.get<{ Querystring: ListQuery }>(
    '/queue',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['queue'],
        summary: 'List queued messages (the `sealgate queue list --json` entries) with filters and paging',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            state: { type: 'string', enum: [...JOB_STATES] },
            domain: { type: 'string', minLength: 1, maxLength: 253 },
            sender: { type: 'string', maxLength: 320 },
            olderThan: { type: 'string', pattern: DURATION_PATTERN, description: 'received at least this long ago: seconds or "30s", "5m", "2h", "1d"' },
            ...paging,
          },
        },
      },
    },
    async (request) => {
      const q = request.query;
      const all = await ctx.store.listMessages({
        state: q.state,
        domain: q.domain?.toLowerCase(),
        sender: q.sender,
        olderThan: q.olderThan === undefined ? undefined : parseAdminDuration(q.olderThan),
      });
      return { items: all.slice(q.offset, q.offset + q.limit).map(toListEntry), total: all.length, limit: q.limit, offset: q.offset };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/queue/:id',
    { config: { scope: 'read' }, schema: { tags: ['queue'], summary: 'One message: envelope, header facts, jobs, per-recipient state, attempts and evidence', params: idParams } },
    async (request, reply) => {
      const message = await ctx.store.getMessage(request.params.id);
      if (!message) return reply.code(404).send({ error: 'not-found', message: `no message with queue id ${request.params.id}` });
      return toMessageDetail(message);
    },
  );

  const actions: Array<[MessageAction, string]> = [
    ['retry', 'Make every waiting job of the message due now'],
    ['hold', 'Hold every waiting job (no delivery until released)'],
    ['release', 'Release held jobs to the state they had'],
  ];
  for (const [action, summary] of actions) {
    app.post<{ Params: { id: string } }>(`/queue/:id/${action}`, { config: { scope: 'operate' }, schema: { tags: ['queue'], summary, params: idParams } }, async (request) => {
      const message = await applyMessageAction(ctx.store, action, request.params.id);
      ctx.recordAction(request, { action: `queue-${action}`, id: request.params.id });
      return { id: request.params.id, action, message: message ? toMessageDetail(message) : null };
    });
  }

  app.delete<{ Params: { id: string } }>(
    '/queue/:id',
    { config: { scope: 'operate' }, schema: { tags: ['queue'], summary: 'Delete a message, its body, jobs and fallback items', params: idParams } },
    async (request) => {
      await applyMessageAction(ctx.store, 'delete', request.params.id);
      ctx.recordAction(request, { action: 'queue-delete', id: request.params.id });
      return { id: request.params.id, action: 'delete' };
    },
  );
}
