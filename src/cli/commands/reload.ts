import type { Command } from 'commander';
import { spoolLockHolder } from '../../store';
import { loadCliConfig } from '../context';
import { CliError } from '../errors';
import { askRunningRelay, requestReload } from '../relay-client';

/**
 * `sealgate reload`: the running relay re-reads its config file and applies what can change live, through the
 * admin API (the answer says what changed, or which setting needs a restart); without a reachable admin API, a
 * file-store relay is sent SIGHUP instead (its log then says the outcome).
 */
export function registerReloadCommand(program: Command): void {
  program
    .command('reload')
    .description('make the running relay re-read its config file (as SIGHUP); exit 2 when it refuses the new config')
    .option('--json', 'print the admin API answer as JSON')
    .action(async (opts: { json?: boolean }, command: Command) => {
      const { config } = loadCliConfig(command);
      const relay = await askRunningRelay(config);
      if (relay) {
        const { status, body } = await requestReload(config, relay.url).catch((err: Error) => {
          throw new CliError(`the relay at ${relay.url} did not answer the reload: ${err.message}`);
        });
        if (opts.json) process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
        if (status === 200) {
          if (!opts.json) process.stdout.write(describeReload(body));
          return;
        }
        const message = typeof body.message === 'string' ? body.message : `HTTP ${status}`;
        if (status === 401 || status === 403) throw new CliError(`the relay at ${relay.url} refused the admin token: ${message} (set SEALGATE_ADMIN_TOKEN to a token with the operate scope)`);
        throw new CliError(message, status === 409 || status === 422 ? 2 : 1);
      }
      const embedded = config.queue.backend === 'file' || config.queue.backend === 'lmdb';
      const pid = embedded ? await spoolLockHolder(config.queue.path) : undefined;
      if (pid === undefined) {
        throw new CliError(
          embedded
            ? `no running relay found: no relay holds ${config.queue.path} and the admin API does not answer`
            : 'no running relay found: the admin API does not answer (a Redis-store relay is reloaded through it, or with kill -HUP)',
        );
      }
      process.kill(pid, 'SIGHUP');
      process.stdout.write(`sent SIGHUP to the relay (PID ${pid}); its log says the outcome (event config-reloaded or config-reload-refused)\n`);
    });
}

function describeReload(body: Record<string, unknown>): string {
  const changed = Array.isArray(body.changed) ? (body.changed as string[]) : [];
  return `reloaded: config ${String(body.digest)} (was ${String(body.previousDigest)})\n${changed.length > 0 ? `changed: ${changed.join(', ')}` : 'no setting changed'}\n`;
}
