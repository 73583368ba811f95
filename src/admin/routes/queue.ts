import type { FastifyInstance } from 'fastify';
import { messageSubject } from '../../evidence/recorder';
import { JOB_STATES, type JobState } from '../../store/types';
import { applyBulkAction, applyMessageAction, previewBulkAction, type MessageAction } from '../actions';
import { isEmptySelection, routeScope, selectionView, type BulkAction, type Selection } from '../selection';
import { idParams, paging, type AdminContext } from '../context';
import { DURATION_PATTERN, parseAdminDuration } from '../durations';
import { toListEntry, toMessageDetail } from '../views';

interface ListQuery {
  state?: JobState;
  domain?: string;
  sender?: string;
  recipient?: string;
  olderThan?: string;
  limit: number;
  offset: number;
}

const OPERATE = routeScope('operate');

const selectionSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'which messages: the criteria combine (AND); `all: true` for every message. An empty selection is refused.',
  properties: {
    domain: { type: 'string', minLength: 1, maxLength: 253, description: 'a recipient in this domain (retry/hold/release: only that domain’s jobs)' },
    state: { type: 'string', enum: [...JOB_STATES] },
    sender: { type: 'string', maxLength: 320 },
    recipient: { type: 'string', minLength: 1, maxLength: 320 },
    olderThan: { type: 'string', pattern: DURATION_PATTERN, description: 'received at least this long ago: seconds or "30s", "5m", "2h", "1d"' },
    all: { type: 'boolean', enum: [true] },
  },
} as const;

interface SelectionBody {
  selection: { domain?: string; state?: JobState; sender?: string; recipient?: string; olderThan?: string; all?: true };
  dryRun?: boolean;
}

function toSelection(body: SelectionBody['selection']): Selection {
  const selection: Selection = {};
  if (body.domain !== undefined) selection.domain = body.domain.toLowerCase();
  if (body.state !== undefined) selection.state = body.state;
  if (body.sender !== undefined) selection.sender = body.sender;
  if (body.recipient !== undefined) selection.recipient = body.recipient;
  if (body.olderThan !== undefined) selection.olderThan = parseAdminDuration(body.olderThan) ?? 0;
  if (body.all === true) selection.all = true;
  return selection;
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
            recipient: { type: 'string', minLength: 1, maxLength: 320, description: 'only messages to this envelope recipient' },
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
        recipient: q.recipient,
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
      await ctx.recordAction(request, { action: `queue-${action}`, id: request.params.id }, message ? messageSubject(message) : { queueId: request.params.id });
      return { id: request.params.id, action, message: message ? toMessageDetail(message) : null };
    });
  }

  app.delete<{ Params: { id: string } }>(
    '/queue/:id',
    { config: { scope: 'operate' }, schema: { tags: ['queue'], summary: 'Delete a message, its body, jobs and fallback items', params: idParams } },
    async (request) => {
      // Read first: the evidence record of a delete names the Message-ID and sender the record had.
      const message = await ctx.store.getMessage(request.params.id);
      await applyMessageAction(ctx.store, 'delete', request.params.id);
      await ctx.recordAction(request, { action: 'queue-delete', id: request.params.id }, message ? messageSubject(message) : { queueId: request.params.id });
      return { id: request.params.id, action: 'delete' };
    },
  );

  app.post<{ Params: { action: BulkAction }; Body: SelectionBody }>(
    '/queue/actions/:action',
    {
      config: OPERATE,
      schema: {
        tags: ['queue'],
        summary: 'Retry, hold, release or delete every message of a selection; answers with how many were affected and which were skipped (and why)',
        params: { type: 'object', required: ['action'], additionalProperties: false, properties: { action: { type: 'string', enum: ['retry', 'hold', 'release', 'delete'] } } },
        body: {
          type: 'object',
          required: ['selection'],
          additionalProperties: false,
          properties: { selection: selectionSchema, dryRun: { type: 'boolean', default: false, description: 'only count: what would be affected and skipped' } },
        },
      },
    },
    async (request, reply) => {
      const { action } = request.params;
      const selection = toSelection(request.body.selection);
      if (isEmptySelection(selection))
        return reply.code(400).send({ error: 'bad-request', message: 'the selection is empty: give domain, state, sender, recipient, olderThan, or all: true', field: 'selection' });
      if (request.body.dryRun) {
        const preview = await previewBulkAction(ctx.store, action, selection);
        return {
          action,
          selection: selectionView(selection),
          dryRun: true,
          matched: preview.apply.length + preview.skipped.length,
          affected: preview.apply.map((m) => m.id),
          skipped: preview.skipped,
        };
      }
      const outcome = await applyBulkAction(ctx.store, action, selection, (id) => ctx.recordAction(request, { action: `queue-${action}`, id, bulk: true }, { queueId: id }));
      await ctx.recordAction(request, {
        action: `queue-bulk-${action}`,
        id: 'selection',
        selection: outcome.selection,
        matched: outcome.matched,
        affected: outcome.affected.length,
        skipped: outcome.skipped.length,
      });
      return outcome;
    },
  );

  app.post('/queue/flush', { config: OPERATE, schema: { tags: ['queue'], summary: 'Make every deferred job due now (postqueue -f)' } }, async (request) => {
    const outcome = await applyBulkAction(ctx.store, 'retry', { state: 'deferred' });
    await ctx.recordAction(request, {
      action: 'queue-flush',
      id: 'selection',
      selection: outcome.selection,
      matched: outcome.matched,
      affected: outcome.affected.length,
      skipped: outcome.skipped.length,
      ids: outcome.affected,
    });
    return outcome;
  });
}
