import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { releaseFallbackSelection, type FallbackReleaseOutcome, type PortalOwner } from '../../admin/actions';
import { parseSinceValue } from '../../admin/selection';
import { toFallbackDetail, toFallbackEntry } from '../../admin/views';
import type { LoadedConfig } from '../../config/load';
import { FALLBACK_STATES, FallbackService, isFallbackState } from '../../fallback';
import type { FallbackFilter, Store } from '../../store/types';
import { asCliError, runFallbackAction, withAuditTrail } from '../admin-actions';
import { confirmBulk, type BulkCliOptions } from '../confirm';
import { globalConfigFile, loadCliConfig, withStore } from '../context';
import { CliError } from '../errors';
import { formatAge, formatTable } from '../format';
import { cliActor, withPortal } from './portal';

// The stable JSON shapes live in src/admin/views.ts (shared with the HTTP API).
export { toFallbackEntry, type FallbackListEntry } from '../../admin/views';

/** Thin CLI callers of the fallback module (src/fallback). */
export function registerFallbackCommands(program: Command, options: BulkCliOptions = {}): void {
  const fallback = program.command('fallback').description('inspect and act on the secure-portal fallback queue');

  fallback
    .command('list')
    .description('list recipients diverted to the secure portal')
    .option('--json', 'print {items, total, page, pages, next} for scripts (without paging options: the JSON array as before)')
    .option('--state <state>', `only items in this state (${FALLBACK_STATES.join('|')})`)
    .option('--domain <domain>', 'only items whose recipient is in this domain')
    .option('--recipient <address>', 'only items for this recipient')
    .option('--since <time>', 'only items diverted since this date (2026-01-31, 2026-01-31T12:00:00Z) or within this age (2h, 7d)', parseSince)
    .option('--limit <n>', 'items per page (default 100 when --page is given)', parseWhole('--limit', 1))
    .option('--page <n>', 'which page (from 1)', parseWhole('--page', 1))
    .action(async (opts: FallbackListOptions, command: Command) => {
      const filter = fallbackFilterOf(opts);
      const paged = opts.limit !== undefined || opts.page !== undefined;
      const limit = opts.limit ?? 100;
      const pageNo = opts.page ?? 1;
      const { items, total } = await withStore(command, (store) =>
        new FallbackService(store).page({ ...filter, limit: paged ? limit : Number.MAX_SAFE_INTEGER, offset: paged ? (pageNo - 1) * limit : 0 }),
      );
      const entries = items.map(toFallbackEntry);
      const pages = paged ? Math.max(1, Math.ceil(total / limit)) : 1;
      const next = paged && pageNo < pages ? nextPageCommand(globalConfigFile(command), filter, limit, pageNo + 1) : null;
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(paged ? { items: entries, total, page: pageNo, pages, limit, next } : entries, null, 2)}\n`);
        return;
      }
      if (entries.length === 0) {
        process.stdout.write(total > 0 ? `No items on page ${pageNo} (${total} in all, ${pages} page${pages === 1 ? '' : 's'}).\n` : 'The fallback queue is empty.\n');
        return;
      }
      const now = Date.now();
      const rows = entries.map((e) => [e.id, e.queueId, e.recipient, e.reason, e.state, formatAge(now - Date.parse(e.divertedAt))]);
      process.stdout.write(`${formatTable(['ID', 'QUEUE ID', 'RECIPIENT', 'REASON', 'STATE', 'AGE'], rows)}\n`);
      if (!paged) process.stdout.write(`${entries.length} item${entries.length === 1 ? '' : 's'}\n`);
      else process.stdout.write(`page ${pageNo} of ${pages}: ${entries.length} of ${total} item${total === 1 ? '' : 's'}${next ? `; next page: ${next}` : ''}\n`);
    });

  fallback
    .command('show <id>')
    .description('show one fallback item with its claim and evidence')
    .option('--json', 'print JSON for scripts')
    .action(async (id: string, opts: { json?: boolean }, command: Command) => {
      const item = await withStore(command, (store) => new FallbackService(store).find(id));
      if (!item) throw new CliError(`no fallback item ${id}`, 6);
      const detail = toFallbackDetail(item);
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(detail, null, 2)}\n`);
        return;
      }
      const lines = [
        `Item:        ${detail.id}`,
        `Queue id:    ${detail.queueId}`,
        `Message-ID:  ${detail.messageId ?? '-'}`,
        `From:        ${detail.from || '<>'}`,
        `Recipient:   ${detail.recipient}`,
        `Reason:      ${detail.reason}`,
        `Diverted:    ${detail.divertedAt}`,
        `State:       ${detail.state}${detail.claim ? ` (claimed by ${detail.claim.owner} until ${detail.claim.expiresAt})` : ''}${detail.ackedAt ? ` (acknowledged ${detail.ackedAt})` : ''}`,
        ...detail.evidence.map((e) => `  ${e.at}  ${e.outcome}  ${e.reason}${e.mx ? ` via ${e.mx}` : ''}`),
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    });

  fallback
    .command('release [id]')
    .description('put the recipient back into delivery (not once an external portal acknowledged it); with --domain etc.: every matching item, withdrawing built-in portal copies')
    .option('--domain <domain>', 'every item whose recipient is in this domain (e.g. after the partner fixed its TLS)')
    .option('--recipient <address>', 'every item for this recipient')
    .option('--since <time>', 'every item diverted since this date or within this age (2h, 7d)', parseSince)
    .option('-y, --yes', 'act on a selection without asking (required when not on a terminal)')
    .option('--json', 'print JSON for scripts')
    .action(async (id: string | undefined, opts: FallbackListOptions & { yes?: boolean; json?: boolean }, command: Command) => {
      const filter = fallbackFilterOf({ ...opts, state: undefined });
      const selected = filter.domain !== undefined || filter.recipient !== undefined || filter.since !== undefined;
      if (id !== undefined) {
        if (selected) throw new CliError('give either a fallback item id or a selection (--domain, --recipient, --since), not both', 2);
        const item = await runFallbackAction(command, 'release', id);
        process.stdout.write(opts.json ? `${JSON.stringify({ id, action: 'release', queueId: item.queueId }, null, 2)}\n` : `${id}: released to delivery\n`);
        return;
      }
      if (!selected) throw new CliError('give a fallback item id or a selection: --domain D, --recipient A, --since T (they combine)', 2);
      const outcome = await releaseSelection(command, filter, opts.yes, options);
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(outcome, null, 2)}\n`);
        return;
      }
      const n = outcome.released.length;
      const lines = [`${n} item${n === 1 ? '' : 's'} released, ${outcome.skipped.length} skipped (${outcome.matched} matched)`];
      for (const r of outcome.released) {
        lines.push(
          r.via === 'portal'
            ? `  ${r.id}: ${r.recipient}: portal copy released as ${r.newQueueId ?? '?'}`
            : `  ${r.id}: ${r.recipient}: back in delivery of ${r.queueId}${r.withdrawn ? ' (portal copy withdrawn)' : ''}`,
        );
      }
      for (const skip of outcome.skipped) lines.push(`  ${skip.id}: skipped: ${skip.reason}`);
      process.stdout.write(`${lines.join('\n')}\n`);
    });

  fallback
    .command('delete <id>')
    .description('delete a fallback item')
    .option('--json', 'print JSON for scripts')
    .action(async (id: string, opts: { json?: boolean }, command: Command) => {
      const item = await runFallbackAction(command, 'delete', id);
      process.stdout.write(opts.json ? `${JSON.stringify({ id, action: 'delete', queueId: item.queueId }, null, 2)}\n` : `${id}: deleted\n`);
    });
}

interface FallbackListOptions {
  json?: boolean;
  state?: string | undefined;
  domain?: string;
  recipient?: string;
  since?: number;
  limit?: number;
  page?: number;
}

function fallbackFilterOf(opts: FallbackListOptions): FallbackFilter {
  const filter: FallbackFilter = {};
  if (opts.state !== undefined) {
    if (!isFallbackState(opts.state)) throw new CliError(`--state must be one of ${FALLBACK_STATES.join(', ')}`, 2);
    filter.state = opts.state;
  }
  if (opts.domain !== undefined) filter.domain = opts.domain.toLowerCase();
  if (opts.recipient !== undefined) filter.recipient = opts.recipient;
  if (opts.since !== undefined) filter.since = opts.since;
  return filter;
}

function parseWhole(name: string, min: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min) throw new CliError(`${name} must be a whole number of at least ${min}`, 2);
    return n;
  };
}

/** `--since`: an ISO date or time, or an age (2h: diverted within the last two hours). */
export function parseSince(value: string): number {
  const at = parseSinceValue(value);
  if (at === undefined) throw new CliError('--since must be a date (2026-01-31, 2026-01-31T12:00:00Z) or an age such as 2h or 7d', 2);
  return at;
}

/** The command for the next page: the same filter and page size, `--page` one further. */
function nextPageCommand(configFile: string | undefined, filter: FallbackFilter, limit: number, page: number): string {
  const args = ['sealgate', ...(configFile !== undefined ? ['--config', configFile] : []), 'fallback', 'list'];
  if (filter.state !== undefined) args.push('--state', filter.state);
  if (filter.domain !== undefined) args.push('--domain', filter.domain);
  if (filter.recipient !== undefined) args.push('--recipient', filter.recipient);
  if (filter.since !== undefined) args.push('--since', new Date(filter.since).toISOString());
  args.push('--limit', String(limit), '--page', String(page));
  return args.map((a) => (/^[\w@.:/=+-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/**
 * Releases every matching item; with the built-in portal configured (its key file exists) copies it owns are
 * released or withdrawn too (see releaseFallbackSelection). One audit entry per item and one for the run.
 */
async function releaseSelection(command: Command, filter: FallbackFilter, yes: boolean | undefined, options: BulkCliOptions): Promise<FallbackReleaseOutcome> {
  const run = async (store: Store, loaded: LoadedConfig, portal: PortalOwner | undefined): Promise<FallbackReleaseOutcome> => {
    const items = await new FallbackService(store).list(filter);
    if (items.length > 0) {
      await confirmBulk(`release ${items.length} fallback item${items.length === 1 ? '' : 's'} ${describeFallbackFilter(filter)} back into delivery?`, yes, options.prompter);
    }
    try {
      return await withAuditTrail(store, loaded, async (record) => {
        const outcome = await releaseFallbackSelection(store, filter, portal, cliActor(), (entry) =>
          record(
            entry.via === 'portal'
              ? { action: 'portal-release', id: entry.id, newQueueId: entry.newQueueId, bulk: true }
              : { action: 'fallback-release', id: entry.id, queueId: entry.queueId, bulk: true, ...(entry.withdrawn ? { portalCopy: 'purged' } : {}) },
            { queueId: entry.queueId, recipient: entry.recipient },
          ),
        );
        await record({ action: 'fallback-bulk-release', id: 'selection', selection: outcome.selection, matched: outcome.matched, affected: outcome.released.length, skipped: outcome.skipped.length });
        return outcome;
      });
    } catch (err) {
      throw asCliError(err);
    }
  };
  const loaded = loadCliConfig(command);
  if (!loaded.config.portal.enabled || (!options.portalParts && !existsSync(loaded.config.portal.keyFile))) {
    // No key file: the built-in portal never ran here, so it owns no copies.
    return withStore(command, (store, cfg) => run(store, cfg, undefined));
  }
  return withPortal(command, options, (service, store, cfg) => run(store, cfg, service));
}

function describeFallbackFilter(filter: FallbackFilter): string {
  const parts: string[] = [];
  if (filter.domain !== undefined) parts.push(`of ${filter.domain}`);
  if (filter.recipient !== undefined) parts.push(`to ${filter.recipient}`);
  if (filter.since !== undefined) parts.push(`diverted since ${new Date(filter.since).toISOString()}`);
  return parts.join(', ');
}
