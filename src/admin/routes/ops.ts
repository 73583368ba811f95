import type { FastifyInstance } from 'fastify';
import { parseRoute } from '../../config/schema';
import { checkDomain, probeMx } from '../../outbound/check';
import { NotFoundError } from '../../store/types';
import type { AdminContext } from '../context';
import { parseSinceValue, routeScope } from '../selection';
import { auditAnswer, recipientAnswer } from '../views';

export function registerOpsRoutes(app: FastifyInstance, ctx: AdminContext): void {
  app.get<{ Querystring: { recipient: string; since?: string } }>(
    '/audit',
    {
      config: routeScope('read'),
      schema: {
        tags: ['audit'],
        summary:
          'Every message to one recipient with its outcome and evidence (the `sealgate audit --recipient A --json` entries), newest first; messages whose record was deleted or purged come from the evidence log (recordGone: true)',
        querystring: {
          type: 'object',
          required: ['recipient'],
          additionalProperties: false,
          properties: {
            recipient: { type: 'string', minLength: 1, maxLength: 320 },
            since: { type: 'string', minLength: 1, maxLength: 40, description: 'received at or after this ISO 8601 time, or within this age: "2h", "7d"' },
          },
        },
      },
    },
    async (request, reply) => {
      const { recipient, since } = request.query;
      const at = since === undefined ? undefined : parseSinceValue(since);
      if (since !== undefined && at === undefined) return reply.code(400).send({ error: 'bad-request', message: 'since must be an ISO 8601 time or an age such as "2h" or "7d"', field: 'since' });
      const { items, logError } = await recipientAnswer(ctx.store, recipient, at);
      if (logError !== undefined) ctx.logger.warn({ event: 'evidence-read-failed', err: logError }, 'audit answered from the queue records only: the evidence log could not be read');
      return { recipient, since: at === undefined ? null : new Date(at).toISOString(), items };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/audit/:id',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['audit'],
        summary:
          'Delivery evidence (the `sealgate audit --json` entries) by queue id or Message-ID (URL-encoded, brackets optional), from the queue records and the evidence log: a deleted or purged message still answers (recordGone: true)',
        params: { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 998 } } },
      },
    },
    async (request) => {
      const answer = await auditAnswer(ctx.store, request.params.id);
      if (answer.messages.length === 0 && answer.logged.length === 0) throw new NotFoundError(`no message with queue id or Message-ID ${request.params.id}`);
      if (answer.logError !== undefined) ctx.logger.warn({ event: 'evidence-read-failed', err: answer.logError }, 'audit answered from the queue records only: the evidence log could not be read');
      return {
        messages: [...answer.messages.map((m) => ({ id: m.id, messageId: m.headers.messageId ?? null })), ...answer.logged],
        entries: answer.entries,
      };
    },
  );

  app.get<{ Params: { domain: string }; Querystring: { mx?: string } }>(
    '/check/:domain',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['check'],
        summary: 'The `sealgate check --json` report: plan, per-MX probe and the verdict for a domain; with `mx=host[:port]` the `sealgate check --mx` report of that one host',
        params: {
          type: 'object',
          required: ['domain'],
          properties: { domain: { type: 'string', minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?\\.?$' } },
        },
        querystring: { type: 'object', properties: { mx: { type: 'string', minLength: 1, maxLength: 300 } } },
      },
    },
    async (request, reply) => {
      const domain = request.params.domain.toLowerCase().replace(/\.$/, '');
      if (request.query.mx === undefined) return checkDomain(domain, ctx.policy);
      const target = parseRoute(request.query.mx, ctx.config.outbound.port);
      if (!target) return reply.code(400).send({ error: 'bad-request', message: 'querystring/mx must be a host name or address with an optional :port', field: 'mx' });
      return probeMx(target, domain, ctx.policy, { ipv6: ctx.config.outbound.ipv6 });
    },
  );

  app.get('/stats', { config: { scope: 'read' }, schema: { tags: ['stats'], summary: 'Job, fallback and message counts by state' } }, async () => ctx.store.counts());
}
