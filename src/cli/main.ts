import { Command, CommanderError } from 'commander';
import { registerAuditCommand } from './commands/audit';
import { registerCheckCommand } from './commands/check';
import { registerEvidenceCommands } from './commands/evidence';
import { registerFallbackCommands } from './commands/fallback';
import { registerPortalCommands } from './commands/portal';
import { registerQueueCommands } from './commands/queue';
import { registerReloadCommand } from './commands/reload';
import { registerReportCommand } from './commands/report';
import { registerStartCommand } from './commands/start';
import { registerStatsCommand } from './commands/stats';
import { registerTlsRptCommands } from './commands/tlsrpt';
import { registerTlsRptSendCommand } from './commands/tlsrpt-send';
import { registerUserCommands } from './commands/user';
import { loadConfig } from '../config/load';
import { VERSION } from '../config/version';
import type { BulkCliOptions } from './confirm';
import { globalConfigFile } from './context';
import { CliError, EXIT } from './errors';
import { askRunningRelay, configDriftWarning } from './relay-client';

export { EXIT } from './errors';

/** `options` lets tests give the portal commands in-memory portal parts, and bulk actions a prompter. */
export function buildProgram(options: BulkCliOptions = {}): Command {
  const program = new Command('sealgate')
    .description('Compliance-enforcing outbound SMTP relay')
    .version(VERSION, '-V, --version', 'print the version and exit')
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
  registerReportCommand(program);
  registerStatsCommand(program);
  registerTlsRptCommands(program);
  registerTlsRptSendCommand(program);
  registerReloadCommand(program);
  program.hook('preAction', warnWhenFileDiffers);
  return program;
}

/** Commands that run or reload the relay: the file differing from the running config is their business. */
const NO_DRIFT_WARNING = new Set(['start', 'reload']);

/**
 * Before a command that reads the config file, asks the running relay (its /healthz) which config it uses and
 * warns on stderr when the file differs, so nobody takes a change on disk for one in force.
 */
async function warnWhenFileDiffers(_program: Command, action: Command): Promise<void> {
  let top = action;
  while (top.parent?.parent) top = top.parent;
  if (NO_DRIFT_WARNING.has(top.name())) return;
  let loaded;
  try {
    loaded = loadConfig(globalConfigFile(action));
  } catch {
    return; // the command itself reports a config it cannot read
  }
  const warning = configDriftWarning(loaded, await askRunningRelay(loaded.config));
  if (warning) process.stderr.write(`sealgate: ${warning}\n`);
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
