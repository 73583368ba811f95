import type { Command } from 'commander';
import { JOB_STATES } from '../../store/types';
import { withStore } from '../context';
import { formatTable } from '../format';

export function registerStatsCommand(program: Command): void {
  program
    .command('stats')
    .description('count jobs and fallback items by state')
    .option('--json', 'print JSON for scripts (the store counts)')
    .action(async (opts: { json?: boolean }, command: Command) => {
      const counts = await withStore(command, (store) => store.counts());
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(counts, null, 2)}\n`);
        return;
      }
      const rows = [
        ...JOB_STATES.map((state) => ['job', state, String(counts.jobs[state] ?? 0)]),
        ...(['ready', 'claimed', 'acked'] as const).map((state) => ['fallback', state, String(counts.fallback[state] ?? 0)]),
      ];
      process.stdout.write(`${formatTable(['KIND', 'STATE', 'COUNT'], rows)}\n${counts.messages} message${counts.messages === 1 ? '' : 's'} in the store\n`);
      if (counts.quarantined > 0) {
        process.stdout.write(`${counts.quarantined} quarantined entr${counts.quarantined === 1 ? 'y' : 'ies'} (sealgate queue list --quarantined)\n`);
      }
    });
}
