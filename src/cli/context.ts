import type { Command } from 'commander';
import { loadConfig, type LoadedConfig } from '../config/load';
import { ConfigError } from '../config/load';
import { createLogger, type Logger } from '../log/logger';
import { createStore } from '../store';
import type { Store } from '../store/types';
import { CliError } from './errors';

/** The global options every command shares (`--config`). */
export function globalConfigFile(command: Command): string | undefined {
  let root: Command = command;
  while (root.parent) root = root.parent;
  return root.opts<{ config?: string }>().config;
}

export function loadCliConfig(command: Command): LoadedConfig {
  try {
    return loadConfig(globalConfigFile(command));
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(err.message, 2);
    throw err;
  }
}

/** Logger for admin commands: warnings and errors to stderr, so stdout stays clean for --json. */
export function cliLogger(level: string): Logger {
  return createLogger(level === 'info' || level === 'debug' || level === 'trace' ? 'warn' : (level as 'warn'), 2);
}

/** Opens the configured store for one admin command and always closes it. */
export async function withStore<T>(command: Command, run: (store: Store, loaded: LoadedConfig) => Promise<T>): Promise<T> {
  const loaded = loadCliConfig(command);
  let store: Store;
  try {
    store = createStore(loaded.config, cliLogger(loaded.config.log.level));
  } catch (err) {
    // A Redis password or CA file that cannot be read.
    if (err instanceof ConfigError) throw new CliError(err.message, 2);
    throw err;
  }
  try {
    await store.open();
  } catch (err) {
    throw new CliError(`cannot open the ${loaded.config.queue.backend} store: ${(err as Error).message}`);
  }
  try {
    return await run(store, loaded);
  } finally {
    await store.close();
  }
}
