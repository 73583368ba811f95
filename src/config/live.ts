import { dequal } from 'dequal';
import { ConfigError, loadConfig, type LoadedConfig } from './load';
import type { Config } from './schema';

/**
 * Settings a running relay cannot take over without a restart: the sockets it bound and the store it
 * opened. A reload that changes any of them is refused whole, naming them, so the running config never
 * ends up half old and half new.
 */
export const RESTART_ONLY_KEYS = [
  'listeners',
  'queue.backend',
  'queue.path',
  'queue.redis',
  'admin.enabled',
  'admin.host',
  'admin.port',
  'portal.enabled',
  'portal.host',
  'portal.port',
  'portal.keyFile',
  'audit.file',
  'delivery.enabled',
  'memory.optimizeForSize',
  'memory.maxSemiSpace',
  // Taken over at start by parts that do not reload yet: named here so a change is refused, never ignored.
  'hostname',
  'queue.leaseTime',
  'queue.keepFinished',
  'queue.quarantineRetention',
  'fallback',
  'portal.publicUrl',
  'portal.trustedProxies',
  'portal.organisation',
  'portal.noticeFrom',
  'portal.noticeSubject',
  'portal.includeOriginalSubject',
  'portal.notify',
  'portal.expiry',
  'portal.remindBefore',
  'portal.autoRelease',
  'portal.autoReleaseCheckEvery',
  'portal.methods',
  'portal.sessionIdle',
  'portal.sessionMax',
  'portal.dkim',
  'portal.overrides',
  // Only read while starting: the next start uses it.
  'queue.startupTimeout',
  // The report sender and its schedule are built at start.
  'tlsrpt',
  // The evidence log is opened with the store; the report schedule is built at start.
  'evidence',
  'reports',
] as const;

/**
 * Settings a reload applies (a whole section, or `section.key`), each by a reload step registered in
 * relay.ts (src/reload-steps.ts) or read when a unit of work starts (an SMTP session, a delivery job,
 * an MX connection): a new session or job gets the new value, one in flight keeps the one it started
 * with. Every setting of the schema is in this list or in RESTART_ONLY_KEYS (a unit test walks them).
 */
export const LIVE_KEYS = [
  'log.level',
  // Outbound: a new policy runtime (planner, resolver, MTA-STS, MX session options) per reload that changes them.
  'domains',
  'tlsProfile',
  'dns',
  'mtaSts',
  'outbound',
  // Delivery: read per job, the pool settings per pool (a new pool), the worker limits by the scheduler per claim.
  'delivery.concurrency',
  'delivery.perDestination',
  'delivery.pollInterval',
  'delivery.retrySchedule',
  'delivery.maxQueueTime',
  'delivery.onExpiry',
  'delivery.maxMessagesPerConnection',
  'delivery.connectionIdleTimeout',
  'delivery.honorTlsRequiredNo',
  'delivery.shutdownGrace',
  'delivery.delayWarning',
  // Listeners: certificates re-read, users file checked; new connections and sessions get them.
  'tls',
  'portal.cert',
  'portal.key',
  'auth',
  'limits',
  // Admin API: read from the running config on every request.
  'admin.tokens',
  'admin.maxFailedAuthPerMinute',
  'admin.publicMetrics',
  'admin.metricsTopDomains',
] as const;

/** A reload that was not applied; the running config is unchanged. */
export class ReloadRefusedError extends ConfigError {
  override name = 'ReloadRefusedError';
  constructor(
    message: string,
    /** The settings that need a restart, when that is why it was refused. */
    readonly restartKeys: readonly string[] = [],
  ) {
    super(message);
  }
}

/**
 * One part of the relay taking a new config over. `prepare` does everything that can fail (reading a
 * certificate, parsing a users file) and throws to refuse the reload; the function it returns switches
 * the part over and must not fail. Nothing is switched until every part has prepared.
 */
export interface ReloadStep {
  name: string;
  prepare(next: Config, previous: Config): void | (() => void) | Promise<void | (() => void)>;
}

export interface ConfigStatus {
  file: string;
  digest: string;
  /** When the running config was read (start or last successful reload). */
  loadedAt: string;
  reloads: number;
  failedReloads: number;
  lastReloadAt: string | null;
}

export interface ReloadResult {
  digest: string;
  previousDigest: string;
  loadedAt: string;
  /** Dotted settings whose value changed (`section.key`, `domains.<domain>`); empty when the file changed only in form. */
  changed: string[];
}

/** The relay's running config, which SIGHUP, `sealgate reload` and the admin API replace as a whole. */
export class LiveConfig {
  private loaded: LoadedConfig;
  private loadedAt = new Date();
  private reloads = 0;
  private failedReloads = 0;
  private lastReloadAt: Date | null = null;
  private readonly steps: ReloadStep[] = [];
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    loaded: LoadedConfig,
    private readonly read: (file: string) => LoadedConfig = (file) => loadConfig(file),
  ) {
    this.loaded = loaded;
  }

  /** The config new work starts under; work already started keeps the object it read. */
  get current(): Config {
    return this.loaded.config;
  }

  get digest(): string {
    return this.loaded.digest;
  }

  status(): ConfigStatus {
    return {
      file: this.loaded.file,
      digest: this.loaded.digest,
      loadedAt: this.loadedAt.toISOString(),
      reloads: this.reloads,
      failedReloads: this.failedReloads,
      lastReloadAt: this.lastReloadAt?.toISOString() ?? null,
    };
  }

  /** Registers a part that takes new configs over; steps prepare and switch in registration order. */
  onReload(step: ReloadStep): void {
    this.steps.push(step);
  }

  /** Re-reads the file and switches every part over, or throws (ReloadRefusedError / ConfigError) and changes nothing. One at a time. */
  reload(): Promise<ReloadResult> {
    const run = this.queue.then(() => this.reloadNow());
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async reloadNow(): Promise<ReloadResult> {
    try {
      const result = await this.apply();
      this.reloads += 1;
      return result;
    } catch (err) {
      this.failedReloads += 1;
      throw err;
    } finally {
      this.lastReloadAt = new Date();
    }
  }

  private async apply(): Promise<ReloadResult> {
    const next = this.read(this.loaded.file);
    const previous = this.loaded;
    const restartKeys = RESTART_ONLY_KEYS.filter((key) => !dequal(valueAt(previous.config, key), valueAt(next.config, key)));
    if (restartKeys.length > 0) {
      throw new ReloadRefusedError(`reload refused, nothing changed: ${restartKeys.join(', ')} cannot change while the relay runs (restart it to apply)`, restartKeys);
    }
    const switches: Array<() => void> = [];
    for (const step of this.steps) {
      try {
        const commit = await step.prepare(next.config, previous.config);
        if (commit) switches.push(commit);
      } catch (err) {
        throw new ReloadRefusedError(`reload refused, nothing changed: ${step.name}: ${(err as Error).message}`);
      }
    }
    for (const commit of switches) commit();
    this.loaded = next;
    this.loadedAt = new Date();
    return { digest: next.digest, previousDigest: previous.digest, loadedAt: this.loadedAt.toISOString(), changed: changedKeys(previous.config, next.config) };
  }
}

function valueAt(config: Config, dotted: string): unknown {
  let value: unknown = config;
  for (const part of dotted.split('.')) value = (value as Record<string, unknown> | undefined)?.[part];
  return value;
}

/** Settings that differ, two levels deep (`limits.maxRecipients`, `domains.partner.example`). */
export function changedKeys(previous: Config, next: Config): string[] {
  const changed: string[] = [];
  const sections = new Set([...Object.keys(previous), ...Object.keys(next)]);
  for (const section of [...sections].sort()) {
    const a = (previous as Record<string, unknown>)[section];
    const b = (next as Record<string, unknown>)[section];
    if (dequal(a, b)) continue;
    if (isPlainObject(a) && isPlainObject(b)) {
      const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
      for (const key of [...keys].sort()) if (!dequal(a[key], b[key])) changed.push(`${section}.${key}`);
    } else {
      changed.push(section);
    }
  }
  return changed;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
