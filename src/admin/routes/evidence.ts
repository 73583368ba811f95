import type { FastifyInstance } from 'fastify';
import { parseEvidenceDay } from '../../evidence/dates';
import { EvidencePruneRefused, pruneEvidenceLog } from '../../evidence/maintenance';
import { verifyEvidence } from '../../store/evidence-chain';
import type { AdminContext } from '../context';

const day = { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}$', description: 'a UTC day, YYYY-MM-DD' } as const;

/** The evidence log's integrity check and its retention prune (the `sealgate evidence verify` / `prune` twins). */
export function registerEvidenceRoutes(app: FastifyInstance, ctx: AdminContext): void {
  app.get<{ Querystring: { from?: string; to?: string } }>(
    '/evidence/verify',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['evidence'],
        summary: 'Checks the evidence log’s hash chain and anchors (the days from..to, all by default); ok false names the first broken entry (day, line, seq, reason)',
        querystring: { type: 'object', additionalProperties: false, properties: { from: day, to: day } },
      },
    },
    async (request, reply) => {
      const { from, to } = request.query;
      for (const [field, value] of [
        ['from', from],
        ['to', to],
      ] as const) {
        if (value !== undefined && parseEvidenceDay(value) === undefined) return reply.code(400).send({ error: 'bad-request', message: `${field} must be a day (YYYY-MM-DD)`, field });
      }
      return verifyEvidence(ctx.store, { ...(from ? { fromDay: from } : {}), ...(to ? { toDay: to } : {}) });
    },
  );

  app.post<{ Body: { before: string } }>(
    '/evidence/prune',
    {
      config: { scope: 'operate' },
      schema: {
        tags: ['evidence'],
        summary: 'Removes whole days of evidence before `before` (refused inside evidence.retention) and records the prune in the log',
        body: { type: 'object', required: ['before'], additionalProperties: false, properties: { before: day } },
      },
    },
    async (request, reply) => {
      try {
        return await pruneEvidenceLog(ctx.store, { before: request.body.before, actor: `admin:${request.actor}`, retention: ctx.config.evidence.retention });
      } catch (err) {
        if (err instanceof EvidencePruneRefused) return reply.code(409).send({ error: 'refused', message: err.message, field: 'before' });
        throw err;
      }
    },
  );
}
