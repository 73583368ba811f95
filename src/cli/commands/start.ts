import type { Command } from 'commander';
import { createLogger } from '../../log/logger';
import { startRelay } from '../../relay';
import { loadCliConfig } from '../context';
import { CliError } from '../errors';

/**
 * Beyond delivery.shutdownGrace: inbound's wait for messages being stored (15 s) and its close (5 s), then
 * aborting deliveries, handing leases back and closing the store. Only a hung shutdown reaches this.
 */
const SHUTDOWN_MARGIN_MS = 30_000;

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
        throw new CliError((err as Error).message);
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
      });
    });
}
