import type { Command } from 'commander';
import type { FallbackItem } from '../../store/types';
import { withStore } from '../context';
import { formatAge, formatTable } from '../format';

/** The stable JSON shape of one fallback item (scripts depend on these names). */
export interface FallbackListEntry {
  id: string;
  queueId: string;
  messageId: string | null;
  from: string;
  recipient: string;
  reason: string;
  divertedAt: string;
  state: string;
}

export function toFallbackEntry(item: FallbackItem): FallbackListEntry {
  return {
    id: item.id,
    queueId: item.queueId,
    messageId: item.messageId ?? null,
    from: item.from,
    recipient: item.recipient,
    reason: item.reason,
    divertedAt: new Date(item.divertedAt).toISOString(),
    state: item.state,
  };
}

export function registerFallbackCommands(program: Command): void {
  const fallback = program.command('fallback').description('inspect the secure-portal fallback queue');

  fallback
    .command('list')
    .description('list recipients diverted to the secure portal')
    .option('--json', 'print a JSON array for scripts')
    .action(async (opts: { json?: boolean }, command: Command) => {
      const items = await withStore(command, (store) => store.listFallback());
      const entries = items.map(toFallbackEntry);
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(entries, null, 2)}\n`);
        return;
      }
      if (entries.length === 0) {
        process.stdout.write('The fallback queue is empty.\n');
        return;
      }
      const now = Date.now();
      const rows = entries.map((e) => [e.id, e.queueId, e.recipient, e.reason, e.state, formatAge(now - Date.parse(e.divertedAt))]);
      process.stdout.write(`${formatTable(['ID', 'QUEUE ID', 'RECIPIENT', 'REASON', 'STATE', 'AGE'], rows)}\n`);
      process.stdout.write(`${entries.length} item${entries.length === 1 ? '' : 's'}\n`);
    });
}
