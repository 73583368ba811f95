import type { Command } from 'commander';
import { parseAdminDuration } from '../../admin/durations';
import { toListEntry, toMessageDetail, type MessageDetail } from '../../admin/views';
import type { JobState } from '../../store/types';
import { JOB_STATES } from '../../store/types';
import type { QuarantineEntry } from '../../store/types';
import { runMessageAction, runQuarantinePurge } from '../admin-actions';
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

export function registerQueueCommands(program: Command): void {
  const queue = program.command('queue').description('inspect and act on the delivery queue');

  queue
    .command('list')
    .description('list queued messages (id, sender, recipient domains, size, state, age)')
    .option('--json', 'print a JSON array for scripts')
    .option('--state <state>', `only messages with a job in this state (${JOB_STATES.join('|')})`)
    .option('--domain <domain>', 'only messages with a recipient in this domain')
    .option('--sender <address>', 'only messages from this envelope sender')
    .option('--older-than <age>', 'only messages received at least this long ago (seconds, or 30s, 5m, 2h, 1d)', parseAge)
    .option('--limit <n>', 'at most this many messages', parseCount('--limit', 1))
    .option('--offset <n>', 'skip this many messages first', parseCount('--offset', 0))
    .option('--quarantined', 'list damaged entries set aside instead (id, kind, cause, age, reason)')
    .action(async (opts: { json?: boolean; state?: string; domain?: string; sender?: string; olderThan?: number; limit?: number; offset?: number; quarantined?: boolean }, command: Command) => {
      if (opts.quarantined) {
        await listQuarantined(command, opts.json === true);
        return;
      }
      const state = parseState(opts.state);
      const messages = await withStore(command, (store) =>
        store.listMessages({ state, domain: opts.domain?.toLowerCase(), sender: opts.sender, olderThan: opts.olderThan, limit: opts.limit, offset: opts.offset }),
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
    });

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
    ['retry', 'make every waiting job of a message due now', 'due now'],
    ['hold', 'hold a message (no delivery attempts until released)', 'held'],
    ['release', 'release a held message to the state it had', 'released'],
    ['delete', 'delete a message with its body, jobs and fallback items', 'deleted'],
  ] as const;
  for (const [action, description, done] of actions) {
    queue
      .command(`${action} <id>`)
      .description(description)
      .option('--json', 'print JSON for scripts')
      .action(async (id: string, opts: { json?: boolean }, command: Command) => {
        const message = await runMessageAction(command, action, id);
        if (opts.json) {
          process.stdout.write(`${JSON.stringify({ id, action, message: message ? toMessageDetail(message) : null }, null, 2)}\n`);
          return;
        }
        process.stdout.write(`${id}: ${done}${message ? ` (now ${toListEntry(message).state})` : ''}\n`);
      });
  }
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
