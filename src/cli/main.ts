import { Command, CommanderError } from 'commander';
import { registerAuditCommand } from './commands/audit';
import { registerCheckCommand } from './commands/check';
import { registerEvidenceCommands } from './commands/evidence';
import { registerFallbackCommands } from './commands/fallback';
import { registerPortalCommands } from './commands/portal';
import { registerQueueCommands } from './commands/queue';
import { registerStartCommand } from './commands/start';
import { registerStatsCommand } from './commands/stats';
import { registerUserCommands } from './commands/user';
import type { BulkCliOptions } from './confirm';
import { CliError } from './errors';

/** Exit codes shared by every command; `check` adds its verdict codes (3 divert, 4 defer, 5 bounce). */
export const EXIT = { ok: 0, failure: 1, usage: 2, notFound: 6 } as const;

/** `options` lets tests give the portal commands in-memory portal parts, and bulk actions a prompter. */
export function buildProgram(options: BulkCliOptions = {}): Command {
  const program = new Command('sealgate')
    .description('Compliance-enforcing outbound SMTP relay')
    .option('-c, --config <file>', 'config file (default: $SEALGATE_CONFIG or config/default.yaml)')
    .showHelpAfterError()
    .exitOverride();
  registerStartCommand(program);
  registerUserCommands(program);
  registerQueueCommands(program, options);
  registerCheckCommand(program);
  registerFallbackCommands(program, options);
  registerPortalCommands(program, options);
  registerAuditCommand(program, options);
  registerEvidenceCommands(program, options);
  registerStatsCommand(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? EXIT.ok : EXIT.usage;
      return;
    }
    if (err instanceof CliError) {
      process.stderr.write(`sealgate: ${err.message}\n`);
      process.exitCode = err.exitCode;
      return;
    }
    process.stderr.write(`sealgate: ${(err as Error).message ?? String(err)}\n`);
    process.exitCode = EXIT.failure;
  }
}
