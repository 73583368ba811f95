import type { Command } from 'commander';
import { toFallbackDetail, toFallbackEntry } from '../../admin/views';
import { FALLBACK_STATES, FallbackService, isFallbackState } from '../../fallback';
import { runFallbackAction } from '../admin-actions';
import { withStore } from '../context';
import { CliError } from '../errors';
import { formatAge, formatTable } from '../format';

// The stable JSON shapes live in src/admin/views.ts (shared with the HTTP API).
export { toFallbackEntry, type FallbackListEntry } from '../../admin/views';

/** Thin CLI callers of the fallback module (src/fallback). */
export function registerFallbackCommands(program: Command): void {
  const fallback = program.command('fallback').description('inspect and act on the secure-portal fallback queue');

  fallback
    .command('list')
    .description('list recipients diverted to the secure portal')
    .option('--json', 'print a JSON array for scripts')
    .option('--state <state>', `only items in this state (${FALLBACK_STATES.join('|')})`)
    .action(async (opts: { json?: boolean; state?: string }, command: Command) => {
      const state = opts.state;
      if (state !== undefined && !isFallbackState(state)) throw new CliError(`--state must be one of ${FALLBACK_STATES.join(', ')}`, 2);
      const items = await withStore(command, (store) => new FallbackService(store).list(state === undefined ? {} : { state }));
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

  const actions = [
    ['release', 'put the recipient back into delivery (not once the portal acknowledged it)', 'released to delivery'],
    ['delete', 'delete a fallback item', 'deleted'],
  ] as const;
  for (const [action, description, done] of actions) {
    fallback
      .command(`${action} <id>`)
      .description(description)
      .option('--json', 'print JSON for scripts')
      .action(async (id: string, opts: { json?: boolean }, command: Command) => {
        const item = await runFallbackAction(command, action, id);
        process.stdout.write(opts.json ? `${JSON.stringify({ id, action, queueId: item.queueId }, null, 2)}\n` : `${id}: ${done}\n`);
      });
  }
}
