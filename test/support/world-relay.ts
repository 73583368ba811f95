import { loadConfig } from '../../src/config/load';
import type { Config } from '../../src/config/schema';
import { silentLogger } from '../../src/log/logger';
import { createStore } from '../../src/store';
import type { Store } from '../../src/store/types';
import { relayFixture, startRelayProcess, type RelayFixture, type RelayProcess } from './relay-process';
import { startWorld, type World, type WorldSpec } from './world';

/** A test world, the real relay process delivering into it, and the relay's store opened in the test. */
export interface WorldRelay {
  world: World;
  fixture: RelayFixture;
  relay: RelayProcess;
  /** The relay's config as loaded from its file. */
  config: Config;
  store: Store;
  /** Closes the store, stops the relay and the world, removes the fixture. Safe to call twice. */
  stop(): Promise<void>;
}

export interface WorldRelayOptions {
  /**
   * Relay config on top of `world.relayConfig()` (top-level keys replace): without `delivery`, a 1 s retry and a
   * 200 ms poll, so deferred recipients come round again within a test.
   */
  config?: Record<string, unknown>;
  /** Runs once the config file is written, before the relay starts (files the config names, e.g. keys). */
  beforeStart?: (fixture: RelayFixture) => void | Promise<void>;
}

export async function startWorldRelay(spec: WorldSpec, options: WorldRelayOptions = {}): Promise<WorldRelay> {
  const world = await startWorld(spec);
  let fixture: RelayFixture | undefined;
  let relay: RelayProcess | undefined;
  try {
    fixture = relayFixture({ ...world.relayConfig(), delivery: { retrySchedule: ['1s'], pollInterval: '200ms' }, ...options.config });
    await options.beforeStart?.(fixture);
    relay = await startRelayProcess(fixture.configFile);
    const config = loadConfig(fixture.configFile, {}).config;
    const store = createStore(config, silentLogger());
    await store.open();
    const started = { world, fixture, relay };
    let stopped: Promise<void> | undefined;
    const stopAll = async (): Promise<void> => {
      await store.close();
      await started.relay.stop();
      await world.stop();
      started.fixture.remove();
    };
    return {
      ...started,
      config,
      store,
      stop() {
        stopped ??= stopAll();
        return stopped;
      },
    };
  } catch (error) {
    await relay?.stop();
    await world.stop();
    fixture?.remove();
    throw error;
  }
}
