import { parsePeriodBound, periodBoundProblem } from './dates';
import { EVIDENCE_KINDS, type EvidenceKind, type EvidenceLog, type EvidenceQuery, type EvidenceRecord } from '../store/types';

/**
 * Evidence look-ups (`sealgate evidence search`, GET /api/v1/evidence): the same parameters, checks and bounded
 * answer for the CLI and the admin API. Ids, recipient and domain go through the store's indexes; from/to limit
 * the days read.
 */

/** Records returned when no limit is given, and the most one look-up returns. */
export const EVIDENCE_SEARCH_LIMIT = 1000;
export const EVIDENCE_SEARCH_MAX = 100_000;

/** The look-up as typed (CLI options, API query string): text, checked by evidenceQuery. */
export interface EvidenceSearchParams {
  queueId?: string;
  messageId?: string;
  recipient?: string;
  domain?: string;
  /** Envelope sender; '<>' (or '') is the null sender. */
  sender?: string;
  /** A date (2026-01-31: from its start, UTC) or an ISO 8601 time; inclusive. */
  from?: string;
  /** A date (through the end of that day, UTC) or an ISO 8601 time (exclusive). */
  to?: string;
  /** One kind or several, comma-separated. */
  kind?: string | string[];
  limit?: number;
}

export interface EvidenceSearchError {
  error: string;
  /** The parameter at fault. */
  field: keyof EvidenceSearchParams;
}

/** A Message-ID as stored (the header as received): angle brackets added when left out. */
export function bracketedMessageId(id: string): string {
  return id.startsWith('<') ? id : `<${id}>`;
}

/** Checks the parameters and builds the store query; an error names the parameter at fault. */
export function evidenceQuery(params: EvidenceSearchParams): EvidenceQuery | EvidenceSearchError {
  const query: EvidenceQuery = {};
  if (params.queueId !== undefined) query.queueId = params.queueId;
  if (params.messageId !== undefined) query.messageId = bracketedMessageId(params.messageId);
  if (params.recipient !== undefined) query.recipient = params.recipient.toLowerCase();
  if (params.domain !== undefined) query.domain = params.domain.toLowerCase().replace(/\.$/, '');
  if (params.sender !== undefined) query.sender = params.sender === '<>' ? '' : params.sender.toLowerCase();
  for (const field of ['from', 'to'] as const) {
    const value = params[field];
    if (value === undefined) continue;
    const at = parsePeriodBound(value, field);
    if (at === undefined) return { error: `${field} "${value}" ${periodBoundProblem(value)}`, field };
    query[field] = at;
  }
  if (query.from !== undefined && query.to !== undefined && query.to <= query.from) return { error: 'to must be after from', field: 'to' };
  if (params.kind !== undefined) {
    const kinds = (Array.isArray(params.kind) ? params.kind : [params.kind]).flatMap((k) => k.split(',')).map((k) => k.trim());
    const unknown = kinds.find((k) => !(EVIDENCE_KINDS as readonly string[]).includes(k));
    if (unknown !== undefined || kinds.length === 0) return { error: `kind must be one or more of ${EVIDENCE_KINDS.join(', ')}`, field: 'kind' };
    query.kinds = [...new Set(kinds)] as EvidenceKind[];
  }
  const limit = params.limit ?? EVIDENCE_SEARCH_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > EVIDENCE_SEARCH_MAX) return { error: `limit must be a whole number from 1 to ${EVIDENCE_SEARCH_MAX}`, field: 'limit' };
  query.limit = limit;
  return query;
}

export function isSearchError(value: EvidenceQuery | EvidenceSearchError): value is EvidenceSearchError {
  return 'error' in value;
}

export interface EvidenceSearchResult {
  records: EvidenceRecord[];
  /** More records matched than the limit let through. */
  truncated: boolean;
}

/** Runs a look-up, oldest first, stopping at its limit (one more is read to tell whether there were more). */
export async function searchEvidence(log: Pick<EvidenceLog, 'queryEvidence'>, query: EvidenceQuery): Promise<EvidenceSearchResult> {
  const limit = query.limit ?? EVIDENCE_SEARCH_LIMIT;
  const records: EvidenceRecord[] = [];
  for await (const record of log.queryEvidence({ ...query, limit: limit + 1 })) {
    if (records.length === limit) return { records, truncated: true };
    records.push(record);
  }
  return { records, truncated: false };
}
