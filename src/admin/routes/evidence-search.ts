import type { FastifyInstance } from 'fastify';
import { EVIDENCE_SEARCH_LIMIT, EVIDENCE_SEARCH_MAX, evidenceQuery, isSearchError, searchEvidence, type EvidenceSearchParams } from '../../evidence/search';
import { EVIDENCE_KINDS } from '../../store/types';
import type { AdminContext } from '../context';

type Query = Omit<EvidenceSearchParams, 'kind'> & { kind?: string };

/** GET /evidence: the `sealgate evidence search --json` look-up (read scope), oldest first, bounded by `limit`. */
export function registerEvidenceSearchRoute(app: FastifyInstance, ctx: AdminContext): void {
  const text = (description: string, maxLength = 320) => ({ type: 'string', minLength: 1, maxLength, description });
  app.get<{ Querystring: Query }>(
    '/evidence',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['evidence'],
        summary: 'Evidence log records (recipient outcomes, admin actions, portal events) matching every condition given, oldest first; ids, recipient and domain use the store’s indexes',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            queueId: text('queue id', 64),
            messageId: text('Message-ID (brackets optional)', 998),
            recipient: text('recipient address'),
            domain: text('recipient domain', 253),
            sender: { type: 'string', maxLength: 320, description: 'envelope sender ("<>" for the null sender)' },
            from: text('a date (2026-01-31, UTC) or ISO 8601 time; inclusive', 40),
            to: text('a date (through the end of that day, UTC) or ISO 8601 time (exclusive)', 40),
            kind: text(`comma-separated: ${EVIDENCE_KINDS.join(', ')}`, 200),
            limit: { type: 'integer', minimum: 1, maximum: EVIDENCE_SEARCH_MAX, default: EVIDENCE_SEARCH_LIMIT, description: 'most records returned' },
          },
        },
      },
    },
    async (request, reply) => {
      const query = evidenceQuery(request.query);
      if (isSearchError(query)) return reply.code(400).send({ error: 'bad-request', message: query.error, field: query.field });
      const { records, truncated } = await searchEvidence(ctx.store, query);
      return { count: records.length, truncated, limit: query.limit, records };
    },
  );
}
