import type { Command } from 'commander';
import { createLogger } from '../../log/logger';
import { startRelay } from '../../relay';
import { SpoolLockedError } from '../../store';
import { loadCliConfig } from '../context';
import { CliError } from '../errors';

/**
 * Beyond delivery.shutdownGrace: inbound's wait for messages being stored (15 s) and its close (5 s), then
 * aborting deliveries, handing leases back and closing the store. Only a hung shutdown reaches this.
 */
const SHUTDOWN_MARGIN_MS = 30_000;
/** After a failed start, the longest the process may linger before it is made to exit. */
const START_FAILURE_EXIT_MS = 2_000;
/** Exit codes (as EXIT in main.ts): another relay holds the spool is a usage error, anything else a failure. */
const EXIT_FAILURE = 1;
const EXIT_SPOOL_IN_USE = 2;

export function registerStartCommand(program: Command): void {
  program
    .command('start')
    .description('run the relay (SMTP submission listeners and the queue)')
    .action(async (_opts: unknown, command: Command) => {
      const loaded = loadCliConfig(command);
      const logger = createLogger(loaded.config.log.level);
      logger.info({ event: 'config-loaded', file: loaded.file, backend: loaded.config.queue.backend }, 'configuration loaded');
      let relay;
      try {
        relay = await startRelay(loaded, logger);
      } catch (err) {
        logger.fatal({ event: 'start-failed', err: (err as Error).message }, 'Sealgate could not start');
        logger.flush();
        // Everything opened is closed by now, so the process ends by itself; should anything still hold the
        // event loop (a library's reconnect timer), exit anyway: never a live process without listeners.
        setTimeout(() => process.exit(process.exitCode ?? EXIT_FAILURE), START_FAILURE_EXIT_MS).unref();
        throw new CliError((err as Error).message, err instanceof SpoolLockedError ? EXIT_SPOOL_IN_USE : EXIT_FAILURE);
      }
      await new Promise<void>((resolve) => {
        const stop = (signal: NodeJS.Signals) => {
          logger.info({ event: 'shutdown', signal }, 'shutting down');
          const force = setTimeout(() => {
            logger.error({ event: 'shutdown-timeout' }, 'shutdown took too long; exiting');
            process.exit(1);
          }, loaded.config.delivery.shutdownGrace + SHUTDOWN_MARGIN_MS);
          force.unref();
          void relay.close().finally(() => {
            logger.info({ event: 'stopped' }, 'Sealgate stopped');
            logger.flush();
            resolve();
          });
        };
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
        // systemd's ExecReload and logrotate habits: re-read the config, never stop (the outcome is logged by reload).
        process.on('SIGHUP', () => {
          logger.info({ event: 'reload-requested', signal: 'SIGHUP' }, 'reloading the configuration');
          relay.reload().catch(() => undefined);
        });
      });
    });
}
