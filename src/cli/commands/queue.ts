import type { Command } from 'commander';
import type { JobState, MessageRecord } from '../../store/types';
import { JOB_STATES } from '../../store/types';
import { withStore } from '../context';
import { CliError } from '../errors';
import { formatAge, formatSize, formatTable } from '../format';

/** The stable JSON shape of one queued message (scripts depend on these names). */
export interface QueueListEntry {
  id: string;
  messageId: string | null;
  from: string;
  size: number;
  receivedAt: string;
  state: string;
  recipients: Array<{ address: string; domain: string; state: string }>;
}

export function toListEntry(message: MessageRecord): QueueListEntry {
  const recipients = message.jobs.flatMap((job) =>
    job.recipients.map((rcpt) => ({
      address: rcpt.address,
      domain: job.domain,
      // A recipient still pending takes its job's state (queued, deferred, held, leased).
      state: rcpt.state === 'pending' ? job.state : rcpt.state,
    })),
  );
  return {
    id: message.id,
    messageId: message.headers.messageId ?? null,
    from: message.from,
    size: message.size,
    receivedAt: new Date(message.receivedAt).toISOString(),
    state: summaryState(message),
    recipients,
  };
}

/** One word for a message whose jobs may differ: the least advanced job state wins. */
export function summaryState(message: MessageRecord): string {
  const states = new Set(message.jobs.map((job) => job.state));
  for (const state of ['leased', 'queued', 'deferred', 'held', 'diverted', 'bounced', 'delivered'] as const) {
    if (states.has(state)) return states.size > 1 && state !== 'leased' ? `${state}+` : state;
  }
  return 'empty';
}

function parseState(value: string | undefined): JobState | undefined {
  if (value === undefined) return undefined;
  if (!(JOB_STATES as readonly string[]).includes(value)) {
    throw new CliError(`--state must be one of ${JOB_STATES.join(', ')}`, 2);
  }
  return value as JobState;
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
    .option('--limit <n>', 'at most this many messages', (v) => Number.parseInt(v, 10))
    .action(async (opts: { json?: boolean; state?: string; domain?: string; sender?: string; limit?: number }, command: Command) => {
      const state = parseState(opts.state);
      const messages = await withStore(command, (store) =>
        store.listMessages({ state, domain: opts.domain?.toLowerCase(), sender: opts.sender, limit: opts.limit }),
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
}
