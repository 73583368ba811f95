import type { Command } from 'commander';
import { parseAdminDuration } from '../../admin/durations';
import { toListEntry, toMessageDetail, type MessageDetail } from '../../admin/views';
import type { JobState } from '../../store/types';
import { JOB_STATES } from '../../store/types';
import type { QuarantineEntry } from '../../store/types';
import { applyBulkAction, previewBulkAction, type BulkOutcome } from '../../admin/actions';
import { describeSelection, isEmptySelection, selectionView, type BulkAction, type Selection } from '../../admin/selection';
import { asCliError, runMessageAction, runQuarantinePurge, withAuditTrail } from '../admin-actions';
import { confirmBulk, type BulkCliOptions, type Prompter } from '../confirm';
import { withStore } from '../context';
import { CliError } from '../errors';
import { formatAge, formatSize, formatTable } from '../format';

// The stable JSON shapes live in src/admin/views.ts (shared with the HTTP API).
export { summaryState, toListEntry, type QueueListEntry } from '../../admin/views';

function parseState(value: string | undefined): JobState | undefined {
  if (value === undefined) return undefined;
  if (!(JOB_STATES as readonly string[]).includes(value)) {
    throw new CliError(`--state must be one of ${JOB_STATES.join(', ')}`, 2);
  }
  return value as JobState;
}

function parseCount(name: string, min: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min) throw new CliError(`${name} must be a whole number of at least ${min}`, 2);
    return n;
  };
}

/** A quarantined entry for scripts: the stored entry with its time as ISO 8601. */
export function toQuarantineView(entry: QuarantineEntry): Omit<QuarantineEntry, 'at'> & { at: string } {
  return { ...entry, at: new Date(entry.at).toISOString() };
}

/** `--before`: an ISO date or time, or an age (7d: set aside at least 7 days ago). */
function parseBefore(value: string): number {
  const age = parseAdminDuration(value);
  if (age !== undefined) return Date.now() - age;
  const at = Date.parse(value);
  if (!Number.isFinite(at)) throw new CliError('--before must be a date (2026-01-31, 2026-01-31T12:00:00Z) or an age such as 7d', 2);
  return at;
}

function parseAge(value: string): number {
  const ms = parseAdminDuration(value);
  if (ms === undefined) throw new CliError('--older-than must be seconds or a duration such as 30s, 5m, 2h, 1d', 2);
  return ms;
}

const show = (value: string | null | undefined) => (value === null || value === undefined || value === '' ? '-' : value);

export function describeMessage(detail: MessageDetail): string {
  const lines = [
    `Queue id:    ${detail.id}`,
    `Message-ID:  ${show(detail.messageId)}`,
    `From:        ${detail.from || '<>'}${detail.headers.from ? `  (header From: ${detail.headers.from})` : ''}`,
    `Received:    ${detail.receivedAt} from ${detail.envelope.client.ip}${detail.envelope.client.user ? ` (user ${detail.envelope.client.user})` : ''} on ${detail.envelope.client.listener}`,
    `Size:        ${formatSize(detail.size)}${detail.bodyRemoved ? ' (body removed)' : ''}`,
    `State:       ${detail.state}`,
    '',
  ];
  const rows = detail.jobs.flatMap((job) =>
    job.recipients.map((rcpt) => {
      const last = rcpt.evidence.at(-1);
      return [
        rcpt.address,
        rcpt.state,
        String(job.attempts),
        job.state === 'deferred' || job.state === 'queued' ? show(job.dueAt) : '-',
        last ? `${last.reason}${last.mx ? ` via ${last.mx}` : ''}` : '-',
      ];
    }),
  );
  lines.push(formatTable(['RECIPIENT', 'STATE', 'ATTEMPTS', 'DUE', 'LAST'], rows));
  return lines.join('\n');
}

export function registerQueueCommands(program: Command, options: BulkCliOptions = {}): void {
  const queue = program.command('queue').description('inspect and act on the delivery queue');

  queue
    .command('list')
    .description('list queued messages (id, sender, recipient domains, size, state, age)')
    .option('--json', 'print a JSON array for scripts')
    .option('--state <state>', `only messages with a job in this state (${JOB_STATES.join('|')})`)
    .option('--domain <domain>', 'only messages with a recipient in this domain')
    .option('--sender <address>', 'only messages from this envelope sender')
    .option('--recipient <address>', 'only messages to this envelope recipient')
    .option('--older-than <age>', 'only messages received at least this long ago (seconds, or 30s, 5m, 2h, 1d)', parseAge)
    .option('--limit <n>', 'at most this many messages', parseCount('--limit', 1))
    .option('--offset <n>', 'skip this many messages first', parseCount('--offset', 0))
    .option('--quarantined', 'list damaged entries set aside instead (id, kind, cause, age, reason)')
    .action(
      async (
        opts: { json?: boolean; state?: string; domain?: string; sender?: string; recipient?: string; olderThan?: number; limit?: number; offset?: number; quarantined?: boolean },
        command: Command,
      ) => {
        if (opts.quarantined) {
          await listQuarantined(command, opts.json === true);
          return;
        }
        const state = parseState(opts.state);
        const messages = await withStore(command, (store) =>
          store.listMessages({ state, domain: opts.domain?.toLowerCase(), sender: opts.sender, recipient: opts.recipient, olderThan: opts.olderThan, limit: opts.limit, offset: opts.offset }),
        );
        const entries = messages.map(toListEntry);
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(entries, null, 2)}\n`);
          return;
        }
        if (entries.length === 0) {
          process.stdout.write('The queue is empty.\n');
          return;
        }
        const now = Date.now();
        const rows = entries.map((entry) => [
          entry.id,
          entry.from === '' ? '<>' : entry.from,
          [...new Set(entry.recipients.map((r) => r.domain))].join(','),
          formatSize(entry.size),
          entry.state,
          formatAge(now - Date.parse(entry.receivedAt)),
        ]);
        process.stdout.write(`${formatTable(['ID', 'SENDER', 'DOMAINS', 'SIZE', 'STATE', 'AGE'], rows)}\n`);
        process.stdout.write(`${entries.length} message${entries.length === 1 ? '' : 's'}\n`);
      },
    );

  queue
    .command('purge-quarantine')
    .description('delete quarantined entries (and any partial bodies kept with them); audited')
    .option('--before <date>', 'only entries set aside before this date or at least this long ago (7d); default: all', parseBefore)
    .option('--json', 'print JSON for scripts')
    .action(async (opts: { before?: number; json?: boolean }, command: Command) => {
      const purged = await runQuarantinePurge(command, opts.before ?? Date.now() + 1);
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ purged: purged.map(toQuarantineView) }, null, 2)}\n`);
        return;
      }
      process.stdout.write(`${purged.length} quarantined entr${purged.length === 1 ? 'y' : 'ies'} deleted\n`);
    });

  queue
    .command('show <id>')
    .description('show one message: envelope, header facts, per-recipient state, attempts and evidence')
    .option('--json', 'print JSON for scripts')
    .action(async (id: string, opts: { json?: boolean }, command: Command) => {
      const message = await withStore(command, (store) => store.getMessage(id));
      if (!message) throw new CliError(`no message with queue id ${id}`, 6);
      const detail = toMessageDetail(message);
      process.stdout.write(opts.json ? `${JSON.stringify(detail, null, 2)}\n` : `${describeMessage(detail)}\n`);
    });

  const actions = [
    ['retry', 'make every waiting job of a message (or of a selection) due now', 'due now', 'retried'],
    ['hold', 'hold a message or a selection (no delivery attempts until released)', 'held', 'held'],
    ['release', 'release a held message or selection to the state it had', 'released', 'released'],
    ['delete', 'delete a message or a selection: body, pending jobs and fallback items (final outcomes stay as evidence)', 'deleted', 'deleted'],
  ] as const;
  for (const [action, description, done, bulkDone] of actions) {
    queue
      .command(`${action} [id]`)
      .description(description)
      .option('--domain <domain>', 'every message with a recipient in this domain (retry/hold/release: only that domain’s jobs)')
      .option('--state <state>', `every message with a job in this state (${JOB_STATES.join('|')})`)
      .option('--sender <address>', 'every message from this envelope sender')
      .option('--recipient <address>', 'every message to this envelope recipient')
      .option('--older-than <age>', 'every message received at least this long ago (seconds, or 30s, 5m, 2h, 1d)', parseAge)
      .option('--all', 'every message in the queue')
      .option('-y, --yes', 'act on a selection without asking (required when not on a terminal)')
      .option('--json', 'print JSON for scripts')
      .action(async (id: string | undefined, opts: SelectionOptions & { yes?: boolean; json?: boolean }, command: Command) => {
        const selection = selectionOf(opts);
        if (id !== undefined) {
          if (!isEmptySelection(selection)) throw new CliError('give either a queue id or a selection (--domain, --state, ...), not both', 2);
          const message = await runMessageAction(command, action, id);
          if (opts.json) {
            process.stdout.write(`${JSON.stringify({ id, action, message: message ? toMessageDetail(message) : null }, null, 2)}\n`);
            return;
          }
          process.stdout.write(`${id}: ${done}${message ? ` (now ${toListEntry(message).state})` : ''}\n`);
          return;
        }
        if (isEmptySelection(selection)) throw new CliError(`give a queue id or a selection: ${SELECTION_HELP}`, 2);
        const outcome = await runBulkAction(command, action, selection, opts.yes, options.prompter);
        writeBulkOutcome(outcome, bulkDone, opts.json === true);
      });
  }

  queue
    .command('flush')
    .description('make every deferred job due now (postqueue -f)')
    .option('--json', 'print JSON for scripts')
    .action(async (opts: { json?: boolean }, command: Command) => {
      const outcome = await withStore(command, (store, loaded) =>
        withAuditTrail(store, loaded, async (record) => {
          const result = await applyBulkAction(store, 'retry', { state: 'deferred' });
          await record({
            action: 'queue-flush',
            id: 'selection',
            selection: result.selection,
            matched: result.matched,
            affected: result.affected.length,
            skipped: result.skipped.length,
            ids: result.affected,
          });
          return result;
        }),
      );
      writeBulkOutcome(outcome, 'due now', opts.json === true);
    });
}

interface SelectionOptions {
  domain?: string;
  state?: string;
  sender?: string;
  recipient?: string;
  olderThan?: number;
  all?: boolean;
}

const SELECTION_HELP = '--domain D, --state S, --sender A, --recipient A, --older-than T (they combine), or --all';

function selectionOf(opts: SelectionOptions): Selection {
  const selection: Selection = {};
  if (opts.domain !== undefined) selection.domain = opts.domain.toLowerCase();
  const state = parseState(opts.state);
  if (state !== undefined) selection.state = state;
  if (opts.sender !== undefined) selection.sender = opts.sender;
  if (opts.recipient !== undefined) selection.recipient = opts.recipient;
  if (opts.olderThan !== undefined) selection.olderThan = opts.olderThan;
  if (opts.all === true) selection.all = true;
  return selection;
}

/**
 * A bulk action: counts what the selection matches, asks (unless --yes), then acts; one audit entry per message
 * (as the single action writes) and one for the whole run with its selection and counts.
 */
async function runBulkAction(command: Command, action: BulkAction, selection: Selection, yes: boolean | undefined, prompter: Prompter | undefined): Promise<BulkOutcome> {
  return withStore(command, async (store, loaded) => {
    const preview = await previewBulkAction(store, action, selection);
    if (preview.apply.length === 0) {
      return { action, selection: selectionView(selection), matched: preview.skipped.length, affected: [], skipped: preview.skipped };
    }
    const count = preview.apply.length;
    await confirmBulk(
      `${action} ${count} message${count === 1 ? '' : 's'} ${describeSelection(selection)}${preview.skipped.length > 0 ? ` (${preview.skipped.length} more skipped)` : ''}?`,
      yes,
      prompter,
    );
    try {
      return await withAuditTrail(store, loaded, async (record) => {
        const outcome = await applyBulkAction(store, action, selection, (id) => record({ action: `queue-${action}`, id, bulk: true }, { queueId: id }));
        await record({ action: `queue-bulk-${action}`, id: 'selection', selection: outcome.selection, matched: outcome.matched, affected: outcome.affected.length, skipped: outcome.skipped.length });
        return outcome;
      });
    } catch (err) {
      throw asCliError(err);
    }
  });
}

function writeBulkOutcome(outcome: BulkOutcome, done: string, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(outcome, null, 2)}\n`);
    return;
  }
  const n = outcome.affected.length;
  const lines = [`${n} message${n === 1 ? '' : 's'} ${done}, ${outcome.skipped.length} skipped (${outcome.matched} matched)`];
  for (const skip of outcome.skipped) lines.push(`  ${skip.id}: ${skip.reason}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function listQuarantined(command: Command, json: boolean): Promise<void> {
  const entries = await withStore(command, (store) => store.listQuarantined());
  if (json) {
    process.stdout.write(`${JSON.stringify(entries.map(toQuarantineView), null, 2)}\n`);
    return;
  }
  if (entries.length === 0) {
    process.stdout.write('Nothing is quarantined.\n');
    return;
  }
  const now = Date.now();
  const rows = entries.map((e) => [e.id, e.kind, e.code, formatAge(now - e.at), e.reason]);
  process.stdout.write(`${formatTable(['ID', 'KIND', 'CAUSE', 'AGE', 'REASON'], rows)}\n`);
  process.stdout.write(`${entries.length} quarantined entr${entries.length === 1 ? 'y' : 'ies'}\n`);
}
