import type { Command } from 'commander';
import { JOB_STATES } from '../../store/types';
import { withStore } from '../context';
import { formatTable } from '../format';
import { askRunningRelay } from '../relay-client';

export function registerStatsCommand(program: Command): void {
  program
    .command('stats')
    .description('count jobs and fallback items by state, and show the config the running relay uses')
    .option('--json', "print JSON for scripts (the store counts, and `relay`: the running relay's version and config digest, or null)")
    .action(async (opts: { json?: boolean }, command: Command) => {
      const { counts, config } = await withStore(command, async (store, loaded) => ({ counts: await store.counts(), config: loaded.config }));
      const relay = await askRunningRelay(config);
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ ...counts, relay: relay ?? null }, null, 2)}\n`);
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
      process.stdout.write(
        relay
          ? `relay at ${relay.url}: version ${relay.version ?? '?'}, config ${relay.digest ?? '?'} loaded ${relay.loadedAt ?? '?'}\n`
          : 'relay: not answering on the admin API the config names (stopped, admin off, or admin.port 0)\n',
      );
    });
}
