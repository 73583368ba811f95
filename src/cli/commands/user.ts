import type { Command } from 'commander';
import { addUser, listUsers, removeUser } from '../../auth/users';
import { loadCliConfig } from '../context';
import { CliError } from '../errors';
import { formatTable } from '../format';

/** Password from a pipe (first line) or, on a terminal, typed twice without echo. */
async function readPassword(): Promise<string> {
  if (!process.stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    const password = Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
    if (password === '') throw new CliError('no password on standard input', 2);
    return password;
  }
  // Loaded on demand: only this prompt needs it, and every command (the relay's `start` too) loads this module.
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a lazy require keeps read unloaded until a password is typed
  const { read } = require('read') as typeof import('read');
  const first = await read({ prompt: 'Password: ', silent: true, replace: '*' });
  const second = await read({ prompt: 'Repeat password: ', silent: true, replace: '*' });
  if (first !== second) throw new CliError('the passwords do not match', 2);
  if (first === '') throw new CliError('an empty password is not allowed', 2);
  return first;
}

export function registerUserCommands(program: Command): void {
  const user = program.command('user').description('manage submission users (AUTH PLAIN/LOGIN)');

  user
    .command('add <name>')
    .description('add a user or change their password (password from stdin, or a prompt)')
    .option('--sender-domain <domain...>', 'only allow these envelope sender domains for this user')
    .action(async (name: string, opts: { senderDomain?: string[] }, command: Command) => {
      const { config } = loadCliConfig(command);
      const password = await readPassword();
      const result = await addUser(config.auth.usersFile, name, password, { allowedSenderDomains: opts.senderDomain });
      process.stdout.write(`${result === 'updated' ? 'Updated' : 'Added'} user ${name} in ${config.auth.usersFile}\n`);
    });

  user
    .command('remove <name>')
    .description('remove a user')
    .action(async (name: string, _opts: unknown, command: Command) => {
      const { config } = loadCliConfig(command);
      const removed = await removeUser(config.auth.usersFile, name);
      if (!removed) throw new CliError(`no user named ${name}`, 6);
      process.stdout.write(`Removed user ${name}\n`);
    });

  user
    .command('list')
    .description('list users')
    .option('--json', 'print a JSON array for scripts')
    .action(async (opts: { json?: boolean }, command: Command) => {
      const { config } = loadCliConfig(command);
      const users = await listUsers(config.auth.usersFile);
      if (opts.json) {
        const shown = users.map((u) => ({ name: u.name, allowedSenderDomains: u.allowedSenderDomains ?? null, createdAt: u.createdAt }));
        process.stdout.write(`${JSON.stringify(shown, null, 2)}\n`);
        return;
      }
      if (users.length === 0) {
        process.stdout.write('No users.\n');
        return;
      }
      const rows = users.map((u) => [u.name, u.allowedSenderDomains?.join(',') ?? '(any)', u.createdAt ?? '']);
      process.stdout.write(`${formatTable(['NAME', 'SENDER DOMAINS', 'CREATED'], rows)}\n`);
    });
}
