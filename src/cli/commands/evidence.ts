import type { Command } from 'commander';
import { parseEvidenceDay } from '../../evidence/dates';
import { EvidencePruneRefused, latestPruneDay, pruneEvidenceLog } from '../../evidence/maintenance';
import { verifyEvidence, type EvidenceVerification } from '../../store/evidence-chain';
import { confirmBulk, type BulkCliOptions } from '../confirm';
import { withStore } from '../context';
import { CliError } from '../errors';
import { registerEvidenceSearchCommand } from './evidence-search';
import { cliActor, withPortal } from './portal';

function dayOption(name: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const day = parseEvidenceDay(value);
  if (day === undefined) throw new CliError(`${name} must be a day (YYYY-MM-DD), not "${value}"`, 2);
  return day;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** One line about the evidence log: what was checked, and the first broken entry when there is one. */
export function describeVerification(v: EvidenceVerification): string[] {
  const span = v.fromDay === null ? '' : v.fromDay === v.toDay ? ` (${v.fromDay})` : ` (${v.fromDay} to ${v.toDay})`;
  const counts = `evidence log: ${plural(v.days, 'day')}${span}, ${plural(v.records, 'record')}, ${plural(v.anchors, 'anchor')}, open day ${v.openDay ?? 'none'}`;
  if (v.firstBroken === null) return [`${counts}: intact`];
  const b = v.firstBroken;
  return [`BROKEN  evidence ${b.day} ${b.line === 0 ? 'anchor' : `line ${b.line}`} (record ${b.seq}): ${b.reason}`, `${counts}: broken`];
}

/**
 * `sealgate evidence verify` checks the evidence log's hash chain and anchors, and every portal item's trail;
 * `sealgate evidence prune` removes whole days older than evidence.retention, and records that it did.
 */
export function registerEvidenceCommands(program: Command, options: BulkCliOptions = {}): void {
  const evidence = program.command('evidence').description('check, search and prune the tamper-evident evidence log and audit trails');
  registerEvidenceSearchCommand(evidence);
  evidence
    .command('verify')
    .description('check the evidence log’s hash chain and anchors and every portal item’s trail; names the first broken entry (exit 1 when one is broken)')
    .option('--from <day>', 'evidence log: first day to check (YYYY-MM-DD; anchors are always all checked)')
    .option('--to <day>', 'evidence log: last day to check (YYYY-MM-DD)')
    .option('--item <id>', 'only this portal item (the evidence log is not checked)')
    .option('--json', 'print JSON for scripts')
    .action(async (opts: { from?: string; to?: string; item?: string; json?: boolean }, command: Command) => {
      const fromDay = dayOption('--from', opts.from);
      const toDay = dayOption('--to', opts.to);
      const { report, log } = await withPortal(command, options, async (service, store) => ({
        log: opts.item === undefined ? await verifyEvidence(store, { ...(fromDay ? { fromDay } : {}), ...(toDay ? { toDay } : {}) }) : undefined,
        report: await service.verify(opts.item === undefined ? undefined : [opts.item]),
      }));
      const ok = report.broken.length === 0 && (log === undefined || log.ok);
      if (opts.json) process.stdout.write(`${JSON.stringify({ ok, ...report, ...(log ? { evidence: log } : {}) }, null, 2)}\n`);
      else {
        if (log) process.stdout.write(describeVerification(log).join('\n') + '\n');
        for (const b of report.broken) process.stdout.write(`BROKEN  item ${b.id}: entry ${b.seq}: ${b.reason}\n`);
        process.stdout.write(`${report.checked} item${report.checked === 1 ? '' : 's'} checked, ${report.events} entries intact, ${report.broken.length} broken\n`);
      }
      if (log?.firstBroken) {
        const b = log.firstBroken;
        throw new CliError(`the evidence log is broken at ${b.day} ${b.line === 0 ? 'anchor' : `line ${b.line}`} (record ${b.seq})`, 1);
      }
      if (!ok)
        throw new CliError(
          `the audit trail of ${report.broken.length} portal item${report.broken.length === 1 ? ' is' : 's are'} broken (first: ${report.broken[0]!.id} entry ${report.broken[0]!.seq})`,
          1,
        );
    });

  evidence
    .command('prune')
    .description('remove whole days of evidence before DATE (only days older than evidence.retention); records the prune in the log')
    .requiredOption('--before <day>', 'remove the days before this one (YYYY-MM-DD)')
    .option('--yes', 'do not ask for confirmation')
    .option('--json', 'print JSON for scripts')
    .action(async (opts: { before: string; yes?: boolean; json?: boolean }, command: Command) => {
      const before = dayOption('--before', opts.before)!;
      const outcome = await withStore(command, async (store, loaded) => {
        const retention = loaded.config.evidence.retention;
        const latest = latestPruneDay(Date.now(), retention);
        if (before > latest) {
          throw new CliError(`refusing to prune before ${before}: evidence is kept for evidence.retention (${Math.round(retention / 86_400_000)} days), so the latest allowed date is ${latest}`, 2);
        }
        await confirmBulk(`remove every day of evidence before ${before} from the evidence log?`, opts.yes, options.prompter);
        try {
          return await pruneEvidenceLog(store, { before, actor: cliActor(), retention });
        } catch (err) {
          if (err instanceof EvidencePruneRefused) throw new CliError(err.message, 2);
          throw err;
        }
      });
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(outcome, null, 2)}\n`);
        return;
      }
      if (outcome.days.length === 0) {
        process.stdout.write(`nothing to prune before ${before}\n`);
        return;
      }
      for (const a of outcome.anchors) process.stdout.write(`removed ${a.day}: ${plural(a.count, 'record')} (${a.firstSeq} to ${a.lastSeq}), anchor ${a.hash}\n`);
      process.stdout.write(
        `${plural(outcome.days.length, 'day')}, ${plural(outcome.records, 'record')} removed; the log now starts after record ${outcome.base!.lastSeq}; recorded as record ${outcome.recorded?.seq ?? '?'}\n`,
      );
    });
}
