import type { LoadedConfig } from './config/load';
import { UserDirectory } from './auth/users';
import { loadOrCreateInboundCertificate } from './inbound/dev-certificate';
import { startInbound, type InboundHandle } from './inbound/server';
import type { Logger } from './log/logger';
import { buildTlsProfile } from './policy/tls-profile';
import { acquireSpoolLock, createStore } from './store';
import type { Store } from './store/types';

export interface Relay {
  store: Store;
  inbound: InboundHandle;
  close(): Promise<void>;
}

const SWEEP_INTERVAL_MS = 60_000;

/** Wires the relay's parts together in dependency order and tears them down in reverse. */
export async function startRelay({ config }: LoadedConfig, logger: Logger): Promise<Relay> {
  const profile = buildTlsProfile(config.tlsProfile);
  for (const problem of profile.nonCompliance) {
    logger.warn({ event: 'tls-profile-noncompliant', problem }, 'TLS profile goes below NIST SP 800-52r2 (allowNonCompliantProfile is set)');
  }

  const releaseSpool = config.queue.backend === 'file' ? await acquireSpoolLock(config.queue.path) : undefined;
  const store = createStore(config, logger);
  const cleanups: Array<() => Promise<void>> = [];
  try {
    await store.open();
    cleanups.push(() => store.close());
    const tls = await loadOrCreateInboundCertificate(config, logger);
    const users = new UserDirectory(config.auth.usersFile);
    const inbound = await startInbound({ config, store, logger, profile, users, tls });
    cleanups.push(() => inbound.close());

    const sweeper = setInterval(() => {
      store.sweep().catch((err: Error) => logger.warn({ event: 'sweep-failed', err: err.message }, 'queue sweep failed'));
    }, SWEEP_INTERVAL_MS);
    sweeper.unref();
    cleanups.push(async () => clearInterval(sweeper));

    logger.info({ event: 'relay-started', backend: store.kind, listeners: inbound.listeners }, 'Sealgate is accepting mail');
    let closing: Promise<void> | undefined;
    return {
      store,
      inbound,
      close: () => (closing ??= runCleanups(cleanups, releaseSpool)),
    };
  } catch (err) {
    await runCleanups(cleanups, releaseSpool);
    throw err;
  }
}

async function runCleanups(cleanups: Array<() => Promise<void>>, releaseSpool: (() => Promise<void>) | undefined): Promise<void> {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  await releaseSpool?.();
}
