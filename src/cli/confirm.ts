import readline from 'node:readline';
import type { PortalCliOptions } from './commands/portal';
import { CliError } from './errors';

/** Asks an operator a yes/no question; only on a terminal. */
export interface Prompter {
  isTerminal(): boolean;
  ask(question: string): Promise<boolean>;
}

/** stdin and stderr (stdout stays clean for --json); only "y" or "yes" is a yes. */
export const terminalPrompter: Prompter = {
  isTerminal: () => process.stdin.isTTY === true && process.stderr.isTTY === true,
  ask: (question) =>
    new Promise((resolve) => {
      const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
      rl.question(question, (answer) => {
        rl.close();
        resolve(/^\s*y(es)?\s*$/i.test(answer));
      });
    }),
};

/** Options of the commands that act on many items (tests give their own prompter). */
export interface BulkCliOptions extends PortalCliOptions {
  prompter?: Prompter;
}

/**
 * Confirmation before acting on many items: `--yes` skips it; on a terminal the operator answers; anywhere else
 * (a script, cron, a pipe) the command refuses with exit 2 instead of acting unseen.
 */
export async function confirmBulk(question: string, yes: boolean | undefined, prompter: Prompter = terminalPrompter): Promise<void> {
  if (yes === true) return;
  if (!prompter.isTerminal()) throw new CliError(`not on a terminal, so not asking "${question}": add --yes to act without confirmation`, 2);
  if (!(await prompter.ask(`${question} [y/N] `))) throw new CliError('cancelled; nothing changed', 1);
}
