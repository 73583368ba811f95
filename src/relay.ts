import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { checkReady, listenersProbe, storeProbe, type Readiness } from './admin/health';
import { inboundMetrics } from './admin/inbound-metrics';
import { createMetrics, type Metrics } from './admin/metrics';
import { assertAdminListenerSafe, startAdminServer } from './admin/server';
import { LiveConfig, type ReloadResult } from './config/live';
import type { LoadedConfig } from './config/load';
import type { Config } from './config/schema';
import { UserDirectory } from './auth/users';
import { loadOrCreateInboundCertificate } from './inbound/dev-certificate';
import { listenerTlsOptions, startInbound, type InboundHandle } from './inbound/server';
import type { Logger } from './log/logger';
import { createAuditLog } from './evidence/audit-log';
import { createEvidenceRecorder } from './evidence/recorder';
import { checkDomain } from './outbound/check';
import { DeliveryEngine } from './outbound/engine';
import { Scheduler } from './outbound/scheduler';
import { createPolicyRuntime, dnssecSummary, livePolicy, type MtaStsResult, readThroughPolicyCache, rebuildPolicyRuntime, storePolicyCache } from './policy';
import { openPortalParts, portalBaseUrl, startPortalRuntime } from './portal/service';
import { portalCertificate, portalTlsOptions, startPortalServer, type PortalServer } from './portal/web';
import { listenersStep, outboundStep, type RunningParts } from './reload-steps';
import { buildTlsProfile } from './policy/tls-profile';
import { partnerPostureCheck } from './admin/posture';
import { startReportSchedule } from './report/runtime';
import { acquireSpoolLock, createStore } from './store';
import { createTlsRptRecorder } from './tlsrpt';
import { startTlsRptSending } from './tlsrpt/runtime';
import { storeReportSource } from './tlsrpt/source';
import type { Store } from './store/types';

export interface Relay {
  store: Store;
  inbound: InboundHandle;
  scheduler: Scheduler;
  /** Prometheus registry and instruments (admin /metrics). */
  metrics: Metrics;
  /** The running config: what new sessions and deliveries start under, its digest and load time. */
  live: LiveConfig;
  /** Store reachable and listeners up (admin /readyz). */
  readiness(): Promise<Readiness>;
  /** Re-reads the config file and applies what can change live (SIGHUP, `sealgate reload`, POST /api/v1/reload); logs either way. */
  reload(): Promise<ReloadResult>;
  close(): Promise<void>;
}

const SWEEP_INTERVAL_MS = 60_000;

/** Wires the relay's parts together in dependency order and tears them down in reverse. */
export async function startRelay(loaded: LoadedConfig, logger: Logger): Promise<Relay> {
  const { config } = loaded;
  const live = new LiveConfig(loaded);
  live.onReload({
    name: 'log.level',
    prepare: (next) => () => {
      logger.level = next.log.level;
    },
  });
  const reload = () => reloadAndLog(live, logger);
  const profile = buildTlsProfile(config.tlsProfile);
  for (const problem of profile.nonCompliance) {
    logger.warn({ event: 'tls-profile-noncompliant', problem }, 'TLS profile goes below NIST SP 800-52r2 (allowNonCompliantProfile is set)');
  }

  if (config.admin.enabled) assertAdminListenerSafe(config.admin);
  // Refused before anything opens: with dns.servers empty only now are the system's resolvers known.
  const dnssec = dnssecSummary(config.dns);
  logger.info({ event: 'dns-dnssec', ...dnssec }, dnssec.dane ? `DANE is on: DNSSEC answers validated by ${dnssec.resolvers.join(', ')}` : 'DANE is off (dns.validating is false)');
  const releaseSpool = config.queue.backend === 'file' || config.queue.backend === 'lmdb' ? await acquireSpoolLock(config.queue.path) : undefined;
  const metrics = createMetrics();
  const store = createStore(config, logger, { quarantined: (entry) => metrics.recordQuarantined(entry) });
  metrics.watchStore(store);
  metrics.watchConfig(live);
  const cleanups: Array<() => Promise<void>> = [];
  try {
    // Closed even when opening fails: a Redis client left behind would reconnect for ever and keep a
    // process without listeners alive.
    cleanups.push(() => store.close());
    await store.open();

    // Every delivery looks up its domain's MTA-STS policy: the store's copy is read once per few seconds per domain.
    const policyOptions = { cache: readThroughPolicyCache(storePolicyCache(store)), logger, mtaStsObserver: { lookedUp: (result: MtaStsResult) => metrics.recordMtaSts(result) } };
    // The evidence log (in the store) is the durable record of every outcome and admin action; the audit file is
    // its plain mirror, written after the append and not fsynced (one fsync per result is the evidence log's).
    const evidence = createEvidenceRecorder({ log: store, mirror: createAuditLog(config.audit.file, logger, { fsync: false }), logger });
    cleanups.push(() => evidence.close());
    const tls = await loadOrCreateInboundCertificate(config, logger);
    // What new work starts under; the reload steps move it on, work in flight keeps what it took.
    const running: RunningParts = { profile, policy: createPolicyRuntime(config, { ...policyOptions, profile }), inboundTls: tls };
    // For parts that ask one question at a time (domain checks, the admin API): always the running policy.
    const policy = livePolicy(() => running.policy);
    // TLS-RPT counting (restart-only): the engine reports its TLS decisions, the recorder adds them up in the store.
    const tlsRpt = config.tlsrpt.enabled ? createTlsRptRecorder({ counters: store, logger }) : undefined;
    if (tlsRpt) cleanups.push(() => tlsRpt.flush());
    const engine = new DeliveryEngine({ config, store, policy: running.policy, logger, evidence, ...(tlsRpt ? { tlsSessions: tlsRpt } : {}) });
    cleanups.push(() => engine.close());
    const instance = `${os.hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
    // The built-in portal takes diverted recipients over (hand-over, notices, expiry) before delivery starts,
    // so the notice outcomes delivery reports have somewhere to go; its listener first, so links name its port.
    const portalParts = config.portal.enabled ? await openPortalParts({ config, logger, store }) : undefined;
    let portalConfig = config;
    let portalUrl: string | null = null;
    let web: PortalServer | undefined;
    if (portalParts) {
      web = await startPortalServer({ config, logger, copies: portalParts.copies, notices: portalParts.notices, cache: store, tls: await portalCertificate(config.portal, tls), profile });
      const started = web;
      cleanups.push(() => started.close());
      portalUrl = web.url;
      // Links name the port the listener got (it differs from the configured one only for port 0).
      portalConfig = { ...config, portal: { ...config.portal, port: web.port } };
      logger.info({ event: 'portal-started', url: web.url, port: web.port, links: portalBaseUrl(portalConfig.portal) }, 'secure portal listening');
      if (!config.portal.publicUrl) {
        logger.warn(
          { event: 'portal-public-url-unset', links: portalBaseUrl(portalConfig.portal) },
          'portal.publicUrl is not set: links in notices point at the listener address, which recipients elsewhere cannot reach',
        );
      }
    }
    // Auto-release (portal.autoRelease) asks the same domain check as `sealgate check`: verdict deliver.
    const compliance = { isCompliant: async (domain: string) => (await checkDomain(domain, policy, { diagnose: false })).verdict === 'deliver' };
    const portal = portalParts ? await startPortalRuntime({ config: portalConfig, logger, store, instance, parts: async () => portalParts, compliance }) : undefined;
    if (portal) cleanups.push(() => portal.close());
    const scheduler = new Scheduler({
      store,
      logger,
      owner: instance,
      concurrency: config.delivery.concurrency,
      perDestination: config.delivery.perDestination,
      leaseMs: config.queue.leaseTime,
      idlePollMs: config.delivery.pollInterval,
      deliver: (claimed, signal) => engine.deliverJob(claimed, signal),
      onCrash: (claimed, error) => engine.onCrash(claimed, error),
      // Evidence first, durable before the store acknowledges the outcome: if the store write then fails the
      // record stays (the job is retried, and its next outcome gets a record of its own).
      beforeRecord: (claimed, result) => engine.recordEvidence(claimed, result),
      onSettled: (claimed, result) => metrics.recordSettled(claimed, result),
      ...(portal ? { noticeObserver: portal.noticeObserver } : {}),
    });
    if (config.delivery.enabled) scheduler.start();
    cleanups.push(() => scheduler.stop(live.current.delivery.shutdownGrace));

    // The daily TLS reports (RFC 8460): one instance per (domain, day) sends, claimed through the store; report mail
    // is queued like a portal notice, so the scheduler above delivers it. Stopped before the store closes.
    if (config.tlsrpt.enabled) {
      const reports = startTlsRptSending({
        config,
        store,
        resolver: { resolveTxt: (name) => policy.resolver.resolveTxt(name), lookup: (host, options, callback) => policy.resolver.lookup(host, options, callback) },
        source: storeReportSource(store, config),
        logger,
      });
      cleanups.push(() => reports.close());
    }

    // Scheduled compliance reports (restart-only): written at start for the last complete period if missing, then after
    // each period ends; report mail is queued compliant-only, so the scheduler above delivers it over compliant TLS or
    // not at all. Its timer is unref'd and stopped before the store closes.
    // The partner-posture section asks `sealgate check` of the busiest domains, through the running policy.
    const reportSchedule = startReportSchedule({ config, store, logger, ...(config.reports.postureDomains > 0 ? { posture: partnerPostureCheck(policy) } : {}) });
    if (reportSchedule) cleanups.push(() => reportSchedule.close());

    const users = new UserDirectory(config.auth.usersFile);
    const inbound = await startInbound({ config, store, logger, profile, users, tls, observer: inboundMetrics(metrics), onQueued: () => scheduler.kick() });
    cleanups.push(() => inbound.close());
    metrics.watchInbound(inbound);

    live.onReload(
      outboundStep({
        running,
        rebuild: (next, previous, nextProfile) => rebuildPolicyRuntime(next, { config: previous, runtime: running.policy }, { ...policyOptions, profile: nextProfile }),
        engine,
        scheduler,
        logger,
      }),
    );
    const portalWeb = web;
    live.onReload(
      listenersStep({
        running,
        loadCertificate: (next) => loadOrCreateInboundCertificate(next, logger),
        openUsers: async (file) => {
          const directory = new UserDirectory(file);
          await directory.load();
          return directory;
        },
        checkTls: (nextProfile, certificate) => listenerTlsOptions(nextProfile, certificate),
        inbound,
        ...(portalWeb
          ? {
              portal: {
                loadCertificate: (next: Config, inboundTls: { cert: string | Buffer; key: string | Buffer }) =>
                  portalCertificate(next.portal, { cert: String(inboundTls.cert), key: String(inboundTls.key) }),
                check: portalTlsOptions,
                setTls: (options: ReturnType<typeof portalTlsOptions>) => portalWeb.setTls(options),
              },
            }
          : {}),
      }),
    );

    const sweeper = setInterval(() => {
      store.sweep().catch((err: Error) => logger.warn({ event: 'sweep-failed', err: err.message }, 'queue sweep failed'));
      // Appends seal the days before theirs; this seals a quiet day too, within a sweep interval of midnight UTC.
      store.sealEvidence().catch((err: Error) => logger.warn({ event: 'evidence-seal-failed', err: err.message }, 'could not seal the evidence log'));
    }, SWEEP_INTERVAL_MS);
    sweeper.unref();
    cleanups.push(async () => clearInterval(sweeper));

    // Last to start, first to stop (cleanups run in reverse).
    if (config.admin.enabled) {
      const admin = await startAdminServer({
        config,
        live,
        store,
        policy,
        logger,
        evidence,
        metrics,
        ...(portal ? { portal: portal.service } : {}),
        readiness: () => checkReady({ store: storeProbe(store), listeners: listenersProbe(inbound) }),
        configStatus: () => live.status(),
        reload,
      });
      cleanups.push(() => admin.close());
    }

    logger.info({ event: 'relay-started', digest: live.digest, backend: store.kind, listeners: inbound.listeners, delivery: config.delivery.enabled, portal: portalUrl }, 'Sealgate is accepting mail');
    let closing: Promise<void> | undefined;
    return {
      store,
      inbound,
      scheduler,
      metrics,
      live,
      readiness: () => checkReady({ store: storeProbe(store), listeners: listenersProbe(inbound) }),
      reload,
      close: () => (closing ??= runCleanups(cleanups, releaseSpool)),
    };
  } catch (err) {
    await runCleanups(cleanups, releaseSpool);
    throw err;
  }
}

async function reloadAndLog(live: LiveConfig, logger: Logger): Promise<ReloadResult> {
  try {
    const result = await live.reload();
    logger.info({ event: 'config-reloaded', file: live.status().file, digest: result.digest, previousDigest: result.previousDigest, changed: result.changed }, 'configuration reloaded');
    return result;
  } catch (err) {
    logger.error(
      { event: 'config-reload-refused', file: live.status().file, digest: live.digest, err: (err as Error).message },
      'configuration reload refused; the running configuration is unchanged',
    );
    throw err;
  }
}

/** Stops in reverse order of start: inbound first (no new mail), then delivery, then the store. */
async function runCleanups(cleanups: Array<() => Promise<void>>, releaseSpool: (() => Promise<void>) | undefined): Promise<void> {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  await releaseSpool?.();
}
