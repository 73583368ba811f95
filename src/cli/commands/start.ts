import v8 from 'node:v8';
import type { Command } from 'commander';
import type { LoadedConfig } from '../../config/load';
import { createLogger, type Logger } from '../../log/logger';
import { startRelay, type Relay } from '../../relay';
import { redactRedisUrl } from '../../store';
import { loadCliConfig } from '../context';
import { CliError, EXIT } from '../errors';
import { classifyStartError, startRetryDelay } from '../startup';
import { boundSemiSpace } from '../young-generation';

/**
 * Beyond delivery.shutdownGrace: inbound's wait for messages being stored (15 s) and its close (5 s), then
 * aborting deliveries, handing leases back and closing the store. Only a hung shutdown reaches this.
 */
const SHUTDOWN_MARGIN_MS = 30_000;
/** After a failed start, the longest the process may linger before it is made to exit. */
const START_FAILURE_EXIT_MS = 2_000;

/** Signals that stop the relay through its shutdown sequence (SIGQUIT too: no signal Node would die of skips it). */
const STOP_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGQUIT'] as const;
/** Signals with no action: logged, so whoever sent one sees it arrived and did nothing. */
const IGNORED_SIGNALS = ['SIGUSR2'] as const;

export function registerStartCommand(program: Command): void {
  program
    .command('start')
    .description('run the relay (SMTP submission listeners and the queue)')
    .action(async (_opts: unknown, command: Command) => {
      const loaded = loadCliConfig(command);
      for (const flag of memoryFlags(loaded.config)) v8.setFlagsFromString(flag);
      const unbound = boundSemiSpace(loaded.config.memory.maxSemiSpace);
      const logger = createLogger(loaded.config.log.level);
      const { queue } = loaded.config;
      // The Redis URL as configured but with its password masked: which Redis, without the secret.
      const store = queue.backend === 'redis' ? { redis: redactRedisUrl(queue.redis.url) } : { path: queue.path };
      logger.info({ event: 'config-loaded', file: loaded.file, backend: queue.backend, ...store }, 'configuration loaded');
      try {
        await runRelay(loaded, logger);
      } finally {
        unbound();
      }
    });
}

/** The V8 flags the relay sets for itself at start (memory.optimizeForSize). */
export function memoryFlags(config: Pick<LoadedConfig['config'], 'memory'>): string[] {
  return config.memory.optimizeForSize ? ['--optimize-for-size'] : [];
}

type Phase = 'starting' | 'running' | 'stopping';

/**
 * Starts the relay (retrying a store that is not there yet), runs it until a stop signal and shuts it down. The
 * signal handlers are in place from the first attempt, so a stop during the retries ends the process cleanly and a
 * repeated stop signal during shutdown never cuts the sequence short.
 */
async function runRelay(loaded: LoadedConfig, logger: Logger): Promise<void> {
  let phase: Phase = 'starting';
  let relay: Relay | undefined;
  let stopRequested: NodeJS.Signals | undefined;
  let wake: (() => void) | undefined;
  let stopped: (() => void) | undefined;
  const done = new Promise<void>((resolve) => (stopped = resolve));

  const shutdown = (running: Relay, signal: NodeJS.Signals) => {
    phase = 'stopping';
    logger.info({ event: 'shutdown', signal }, 'shutting down');
    const force = setTimeout(() => {
      logger.error({ event: 'shutdown-timeout' }, 'shutdown took too long; exiting');
      process.exit(EXIT.failure);
    }, loaded.config.delivery.shutdownGrace + SHUTDOWN_MARGIN_MS);
    force.unref();
    void running.close().finally(() => {
      logger.info({ event: 'stopped' }, 'Sealgate stopped');
      logger.flush();
      stopped?.();
    });
  };
  const onStop = (signal: NodeJS.Signals) => {
    if (phase === 'stopping') {
      logger.warn({ event: 'shutdown-in-progress', signal }, 'already shutting down; the shutdown sequence continues');
      return;
    }
    if (phase === 'starting') {
      if (stopRequested === undefined) logger.info({ event: 'shutdown', signal }, 'stop requested during start; stopping after the current attempt');
      stopRequested ??= signal;
      wake?.();
      return;
    }
    shutdown(relay!, signal);
  };
  const onHangup = () => {
    if (phase !== 'running' || !relay) {
      logger.info({ event: 'reload-skipped', signal: 'SIGHUP', phase }, `not reloading while ${phase}`);
      return;
    }
    // systemd's ExecReload and logrotate habits: re-read the config, never stop (the outcome is logged by reload).
    logger.info({ event: 'reload-requested', signal: 'SIGHUP' }, 'reloading the configuration');
    relay.reload().catch(() => undefined);
  };
  const onIgnored = (signal: NodeJS.Signals) => logger.info({ event: 'signal-ignored', signal }, `${signal} has no action; ignored`);

  for (const signal of STOP_SIGNALS) process.on(signal, onStop);
  for (const signal of IGNORED_SIGNALS) process.on(signal, onIgnored);
  process.on('SIGHUP', onHangup);
  const removeHandlers = () => {
    for (const signal of STOP_SIGNALS) process.off(signal, onStop);
    for (const signal of IGNORED_SIGNALS) process.off(signal, onIgnored);
    process.off('SIGHUP', onHangup);
  };

  try {
    relay = await startWithRetries(loaded, logger, {
      stopRequested: () => stopRequested !== undefined,
      sleep: (ms) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, ms);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        }),
    });
  } catch (err) {
    removeHandlers();
    throw err;
  }
  if (!relay) {
    // Stopped while waiting for the store: nothing runs, so this is an ordinary stop.
    logger.info({ event: 'stopped' }, 'Sealgate stopped');
    logger.flush();
    removeHandlers();
    return;
  }
  phase = 'running';
  if (stopRequested !== undefined) shutdown(relay, stopRequested);
  await done;
  removeHandlers();
}

interface RetryControl {
  stopRequested(): boolean;
  sleep(ms: number): Promise<void>;
}

/**
 * Starts the relay; a store that cannot be opened yet is tried again with a growing wait (1 s doubling to 10 s,
 * jittered) until queue.startupTimeout, each try logged. Returns undefined when a stop signal came meanwhile.
 * Throws a CliError with exit code 2 for config and usage errors, 1 for anything else: never a live process
 * without listeners, never one that waits for ever.
 */
async function startWithRetries(loaded: LoadedConfig, logger: Logger, control: RetryControl): Promise<Relay | undefined> {
  const { config } = loaded;
  const deadline = Date.now() + config.queue.startupTimeout;
  for (let attempt = 1; ; attempt++) {
    let failure: unknown;
    try {
      // A stop signal that came during this attempt is handled by the caller: it shuts the started relay down.
      return await startRelay(loaded, logger);
    } catch (err) {
      failure = err;
    }
    const kind = classifyStartError(failure, config);
    const cause = (failure as Error)?.message ?? String(failure);
    const remaining = deadline - Date.now();
    if (kind === 'retry' && !control.stopRequested() && remaining > 0) {
      const waitMs = Math.min(startRetryDelay(attempt), remaining);
      logger.warn(
        { event: 'start-retry', attempt, waitMs, remainingMs: remaining, backend: config.queue.backend, err: cause },
        `the ${config.queue.backend} store is not available; retrying in ${Math.round(waitMs / 100) / 10} s`,
      );
      await control.sleep(waitMs);
      if (!control.stopRequested()) continue;
    }
    if (kind === 'retry' && control.stopRequested()) return undefined;
    const exitCode = kind === 'usage' ? EXIT.usage : EXIT.failure;
    logger.fatal({ event: 'start-failed', attempts: attempt, kind, exitCode, err: cause }, 'Sealgate could not start');
    logger.flush();
    // Everything opened is closed by now, so the process ends by itself; should anything still hold the
    // event loop (a library's reconnect timer), exit anyway.
    setTimeout(() => process.exit(process.exitCode ?? exitCode), START_FAILURE_EXIT_MS).unref();
    throw new CliError(kind === 'retry' ? `${cause} (gave up after ${attempt} attempts in queue.startupTimeout)` : cause, exitCode);
  }
}
