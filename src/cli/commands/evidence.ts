import type { Command } from 'commander';
import { CliError } from '../errors';
import { registerEvidenceSearchCommand } from './evidence-search';
import { withPortal, type PortalCliOptions } from './portal';

/** `sealgate evidence verify`: checks the hash chain of every portal item's audit trail (or one item's). */
export function registerEvidenceCommands(program: Command, options: PortalCliOptions = {}): void {
  const evidence = program.command('evidence').description('check the tamper-evident audit trails');
  registerEvidenceSearchCommand(evidence);
  evidence
    .command('verify')
    .description('check every portal item’s hash-chained trail; names the first broken entry (exit 1 when one is broken)')
    .option('--item <id>', 'only this portal item')
    .option('--json', 'print JSON for scripts')
    .action(async (opts: { item?: string; json?: boolean }, command: Command) => {
      const report = await withPortal(command, options, (service) => service.verify(opts.item === undefined ? undefined : [opts.item]));
      const ok = report.broken.length === 0;
      if (opts.json) process.stdout.write(`${JSON.stringify({ ok, ...report }, null, 2)}\n`);
      else {
        for (const b of report.broken) process.stdout.write(`BROKEN  item ${b.id}: entry ${b.seq}: ${b.reason}\n`);
        process.stdout.write(`${report.checked} item${report.checked === 1 ? '' : 's'} checked, ${report.events} entries intact, ${report.broken.length} broken\n`);
      }
      if (!ok)
        throw new CliError(
          `the audit trail of ${report.broken.length} portal item${report.broken.length === 1 ? ' is' : 's are'} broken (first: ${report.broken[0]!.id} entry ${report.broken[0]!.seq})`,
          1,
        );
    });
}
