import type { Command } from 'commander';
import type { AuditEntry } from '../../evidence/delivery';
import { EVIDENCE_SEARCH_LIMIT, EVIDENCE_SEARCH_MAX, evidenceQuery, isSearchError, searchEvidence, type EvidenceSearchParams } from '../../evidence/search';
import { EVIDENCE_KINDS, type EvidenceRecord } from '../../store/types';
import { withStore } from '../context';
import { CliError } from '../errors';

/** The look-up's parameters as commander hands them over: text, the limit included. */
type SearchOptions = Omit<EvidenceSearchParams, 'kind' | 'limit'> & { kind?: string; limit?: string; json?: boolean };

/** What a record is about, in a few words: the outcome and how it left, the action, the portal event. */
function summary(record: EvidenceRecord): string {
  const data = record.data;
  if (record.kind === 'recipient-outcome') {
    const e = data as unknown as AuditEntry;
    const tls = e.tls ? ` ${e.tls.protocol ?? '?'} ${e.tls.cipher ?? '?'}` : '';
    return `${String(e.outcome).toUpperCase()} (${e.reason})${e.mx ? ` via ${e.mx} [${e.ip ?? '?'}]` : ''}${tls}`;
  }
  if (record.kind === 'admin-action') return `${String(data.action)} ${String(data.id)}`;
  if (record.kind === 'portal-event') return `${String(data.type)} item ${String(data.itemId)}`;
  return record.kind;
}

/** One record as a text line (exported for tests). */
export function describeEvidenceRecord(record: EvidenceRecord): string {
  const about = [record.queueId, record.recipient].filter((v) => v !== null).join(' ');
  return `${String(record.seq).padStart(6)}  ${new Date(record.at).toISOString()}  ${record.kind.padEnd(17)} ${record.actor}  ${about || '-'}  ${summary(record)}`;
}

/** `sealgate evidence search`: look-ups in the evidence log by id, address, domain, time and kind; bounded. */
export function registerEvidenceSearchCommand(evidence: Command): void {
  evidence
    .command('search')
    .description('find evidence log records (outcomes, admin actions, portal events), oldest first; every condition given must hold')
    .option('--queue-id <id>', 'queue id')
    .option('--message-id <id>', 'Message-ID (brackets optional)')
    .option('--recipient <address>', 'recipient address')
    .option('--domain <domain>', 'recipient domain')
    .option('--sender <address>', 'envelope sender ("<>": the null sender)')
    .option('--from <time>', 'from this date (2026-01-31, UTC) or ISO 8601 time')
    .option('--to <time>', 'up to this date (through its end, UTC) or ISO 8601 time (exclusive)')
    .option('--kind <kinds>', `comma-separated: ${EVIDENCE_KINDS.join(', ')}`)
    .option('--limit <n>', `most records shown (default ${EVIDENCE_SEARCH_LIMIT}, at most ${EVIDENCE_SEARCH_MAX})`)
    .option('--json', 'print {count, truncated, limit, records} for scripts')
    .action(async (opts: SearchOptions, command: Command) => {
      if (opts.limit !== undefined && !/^\d+$/.test(opts.limit)) throw new CliError(`--limit must be a whole number from 1 to ${EVIDENCE_SEARCH_MAX}`, 2);
      const { limit, json: _json, ...params } = opts;
      const query = evidenceQuery({ ...params, ...(limit !== undefined ? { limit: Number(limit) } : {}) });
      if (isSearchError(query)) throw new CliError(`--${query.field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}: ${query.error}`, 2);
      const { records, truncated } = await withStore(command, (store) => searchEvidence(store, query));
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ count: records.length, truncated, limit: query.limit, records }, null, 2)}\n`);
        return;
      }
      if (records.length === 0) {
        process.stdout.write('No evidence records match.\n');
        return;
      }
      process.stdout.write(`${records.map(describeEvidenceRecord).join('\n')}\n`);
      process.stdout.write(`${records.length} record${records.length === 1 ? '' : 's'}${truncated ? ` (more match: raise --limit or narrow the search)` : ''}\n`);
    });
}
