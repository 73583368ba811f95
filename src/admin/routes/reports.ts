import type { FastifyInstance } from 'fastify';
import { buildReport, produceReport, reportFileName } from '../../report';
import { parseReportFormat, parseReportRequest, ReportRequestError } from '../../report/period';
import { REPORT_FORMATS } from '../../report/types';
import type { AdminContext } from '../context';
import { partnerPostureCheck } from '../posture';

interface ReportQuery {
  from: string;
  to: string;
  domain?: string;
  sender?: string;
  format?: string;
  posture?: boolean;
}

/** GET /reports: the `sealgate report` of a period, in any format, as a download. */
export function registerReportRoutes(app: FastifyInstance, ctx: AdminContext): void {
  app.get<{ Querystring: ReportQuery }>(
    '/reports',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['reports'],
        summary: 'The compliance report of a period from the evidence log (the `sealgate report` output), as a file: JSON, CSV, HTML or PDF',
        querystring: {
          type: 'object',
          required: ['from', 'to'],
          additionalProperties: false,
          properties: {
            from: { type: 'string', minLength: 1, maxLength: 40, description: 'first day (YYYY-MM-DD, UTC) or an ISO 8601 time with its zone' },
            to: { type: 'string', minLength: 1, maxLength: 40, description: 'last day, included (YYYY-MM-DD, UTC), or an ISO 8601 time with its zone (excluded)' },
            domain: { type: 'string', minLength: 1, maxLength: 253, description: 'only recipients in this domain' },
            sender: { type: 'string', maxLength: 322, description: 'only messages from this envelope sender (empty: the null sender)' },
            format: { type: 'string', enum: [...REPORT_FORMATS], default: 'json' },
            posture: { type: 'boolean', default: false, description: 'check the busiest domains’ TLS posture now (`sealgate check`); takes a while' },
          },
        },
      },
    },
    async (request, reply) => {
      const { from, to, domain, sender, format: formatText, posture } = request.query;
      let format;
      let wanted;
      try {
        format = parseReportFormat(formatText);
        wanted = parseReportRequest({ from, to, ...(domain === undefined ? {} : { domain }), ...(sender === undefined ? {} : { sender }) });
      } catch (err) {
        if (err instanceof ReportRequestError) return reply.code(400).send({ error: 'bad-request', message: err.message, field: err.field });
        throw err;
      }
      const config = ctx.config;
      const data = await buildReport(ctx.store, wanted, {
        relay: config.hostname,
        now: Date.now(),
        postureDomains: config.reports.postureDomains,
        ...(posture === true ? { posture: partnerPostureCheck(ctx.policy) } : {}),
      });
      const produced = await produceReport(format, data);
      const name = reportFileName(data, produced.extension);
      return reply
        .type(produced.contentType)
        .header('content-disposition', `${format === 'json' ? 'inline' : 'attachment'}; filename="${name}"`)
        .header('x-content-type-options', 'nosniff')
        .send(produced.body);
    },
  );
}
