import type { FastifyInstance } from 'fastify';
import { checkDomain } from '../../outbound/check';
import { NotFoundError } from '../../store/types';
import type { AdminContext } from '../context';
import { auditTrail, findMessages } from '../views';

export function registerOpsRoutes(app: FastifyInstance, ctx: AdminContext): void {
  app.get<{ Params: { id: string } }>(
    '/audit/:id',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['audit'],
        summary: 'Delivery evidence (the `sealgate audit --json` entries) by queue id or Message-ID (URL-encoded, brackets optional)',
        params: { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 998 } } },
      },
    },
    async (request) => {
      const messages = await findMessages(ctx.store, request.params.id);
      if (messages.length === 0) throw new NotFoundError(`no message with queue id or Message-ID ${request.params.id}`);
      return {
        messages: messages.map((m) => ({ id: m.id, messageId: m.headers.messageId ?? null })),
        entries: auditTrail(messages),
      };
    },
  );

  app.get<{ Params: { domain: string } }>(
    '/check/:domain',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['check'],
        summary: 'The `sealgate check --json` report: plan, per-MX probe and the verdict for a domain',
        params: {
          type: 'object',
          required: ['domain'],
          properties: { domain: { type: 'string', minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?\\.?$' } },
        },
      },
    },
    async (request) => checkDomain(request.params.domain.toLowerCase().replace(/\.$/, ''), ctx.policy),
  );

  app.get('/stats', { config: { scope: 'read' }, schema: { tags: ['stats'], summary: 'Job, fallback and message counts by state' } }, async () => ctx.store.counts());
}
