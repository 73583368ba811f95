import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ConfigStatus } from '../config/live';
import { VERSION } from '../config/version';
import type { DeliveryEvidence } from '../evidence/delivery';
import type { MtaStsResult } from '../policy/mta-sts';
import { JOB_STATES, type ClaimedJob, type FallbackState, type JobResult, type QuarantineEntry, type Store, type StoreCounts, type WaitingJobs } from '../store/types';

/**
 * Prometheus instruments for the relay (served on the admin listener's /metrics). Each relay gets
 * its own Registry, so tests can run several side by side. Labels carry reason codes, TLS facts and
 * states only: never addresses, subjects or anything from a message body.
 */

export type MtaStsLookupResult = 'fetched' | 'cached' | 'failed' | 'none';

export interface Metrics {
  readonly registry: Registry;
  readonly messagesAccepted: Counter<'listener'>;
  readonly messagesRefused: Counter<'reason'>;
  readonly recipients: Counter<'outcome' | 'reason'>;
  readonly deliveryLatency: Histogram<'outcome'>;
  readonly outboundTls: Counter<'protocol' | 'cipher'>;
  readonly inboundTls: Counter<'protocol' | 'cipher'>;
  readonly mtaStsLookups: Counter<'result'>;
  readonly quarantined: Counter<'kind' | 'code'>;
  /** Queue and fallback depth gauges read this store's counts() and waitingJobs() at scrape time. */
  watchStore(store: Pick<Store, 'counts' | 'waitingJobs'>): void;
  /** The open-connections gauge reads the inbound side's per-listener count at scrape time. */
  watchInbound(inbound: { connections(): Record<string, number> }): void;
  /**
   * The reload gauges read the running config's status at scrape time, and the per-domain depth its
   * admin.metricsTopDomains (so a reload changes it).
   */
  watchConfig(live: ConfigSource): void;
  /** One job attempt the store has recorded: recipient outcomes, latency of final ones, TLS of each MX session. */
  recordSettled(claimed: ClaimedJob, result: JobResult): void;
  recordMtaSts(result: MtaStsResult): void;
  /** One damaged entry the store set aside (the store's observer). */
  recordQuarantined(entry: QuarantineEntry): void;
  /** The exposition text and its content type. */
  render(): Promise<{ contentType: string; body: string }>;
}

/** What the config gauges read: LiveConfig (src/config/live.ts) or a stand-in. */
export interface ConfigSource {
  status(): ConfigStatus;
  readonly current: { admin: { metricsTopDomains: number } };
}

/** Per-domain depth series when no config is watched (the admin.metricsTopDomains default). */
export const DEFAULT_TOP_DOMAINS = 10;

/** Scrapes within this window reuse one counts() answer, so a busy scraper cannot load the store. */
const COUNTS_CACHE_MS = 2_000;
const FALLBACK_STATES: readonly FallbackState[] = ['ready', 'claimed', 'acked'];
// Submission to final outcome: seconds for a direct delivery, hours to days for retries and expiry.
const LATENCY_BUCKETS = [0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600, 5 * 24 * 3600];

export function createMetrics(options: { defaultMetrics?: boolean; now?: () => number; nodeVersion?: string } = {}): Metrics {
  const now = options.now ?? Date.now;
  const registry = new Registry();
  const registers = [registry];
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });

  const messagesAccepted = new Counter({ name: 'sealgate_messages_accepted_total', help: 'Messages accepted and durably queued (250 after DATA)', labelNames: ['listener'] as const, registers });
  const messagesRefused = new Counter({
    name: 'sealgate_messages_refused_total',
    help: 'Refused connections, commands and messages on the submission listeners, by reason code',
    labelNames: ['reason'] as const,
    registers,
  });
  const recipients = new Counter({
    name: 'sealgate_recipients_total',
    help: 'Recipient outcomes of delivery attempts (delivered, diverted, bounced, deferred), by reason code',
    labelNames: ['outcome', 'reason'] as const,
    registers,
  });
  const deliveryLatency = new Histogram({
    name: 'sealgate_delivery_latency_seconds',
    help: 'Time from submission to a final recipient outcome',
    labelNames: ['outcome'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const outboundTls = new Counter({
    name: 'sealgate_outbound_tls_sessions_total',
    help: 'Outbound MX sessions by negotiated TLS version and cipher suite (compliant or not)',
    labelNames: ['protocol', 'cipher'] as const,
    registers,
  });
  const inboundTls = new Counter({
    name: 'sealgate_inbound_tls_sessions_total',
    help: 'Inbound TLS sessions by negotiated TLS version and cipher suite',
    labelNames: ['protocol', 'cipher'] as const,
    registers,
  });
  const mtaStsLookups = new Counter({
    name: 'sealgate_mta_sts_lookups_total',
    help: 'MTA-STS policy lookups: fetched, served from the cache, failed (fetch, parse or DNS problem), or none published',
    labelNames: ['result'] as const,
    registers,
  });

  const quarantined = new Counter({
    name: 'sealgate_quarantined_total',
    help: 'Damaged queue entries set aside, by what was damaged (message, job, body, fallback, result, file) and cause code',
    labelNames: ['kind', 'code'] as const,
    registers,
  });

  let store: Pick<Store, 'counts' | 'waitingJobs'> | undefined;
  let inbound: { connections(): Record<string, number> } | undefined;
  let live: ConfigSource | undefined;
  let cached: { at: number; counts: Promise<StoreCounts | undefined> } | undefined;
  let cachedWaiting: { at: number; waiting: Promise<WaitingJobs | undefined> } | undefined;
  const currentCounts = (): Promise<StoreCounts | undefined> => {
    if (!store) return Promise.resolve(undefined);
    if (!cached || now() - cached.at >= COUNTS_CACHE_MS) {
      // An unreachable store must not fail the whole scrape: sealgate_store_up says so instead.
      cached = { at: now(), counts: store.counts().catch(() => undefined) };
    }
    return cached.counts;
  };
  // One store read serves both waiting-job gauges of a scrape.
  const currentWaiting = (): Promise<WaitingJobs | undefined> => {
    if (!store) return Promise.resolve(undefined);
    if (!cachedWaiting || now() - cachedWaiting.at >= COUNTS_CACHE_MS) {
      cachedWaiting = { at: now(), waiting: store.waitingJobs().catch(() => undefined) };
    }
    return cachedWaiting.waiting;
  };

  new Gauge({
    name: 'sealgate_build_info',
    help: 'Always 1; the labels carry the Sealgate version and the Node.js version it runs on',
    labelNames: ['version', 'node'] as const,
    registers,
  }).set({ version: VERSION, node: options.nodeVersion ?? process.version }, 1);
  new Gauge({
    name: 'sealgate_queue_oldest_age_seconds',
    help: 'Age of the oldest job waiting for delivery (queued, deferred or being attempted; held jobs left out), 0 when none waits',
    registers,
    async collect() {
      const waiting = await currentWaiting();
      if (waiting) this.set(waiting.oldestArrival === null ? 0 : Math.max(0, (now() - waiting.oldestArrival) / 1000));
    },
  });
  new Gauge({
    name: 'sealgate_queue_domain_jobs',
    help: 'Jobs waiting for delivery per recipient domain: the admin.metricsTopDomains domains with the most, the rest summed under domain="other"',
    labelNames: ['domain'] as const,
    registers,
    async collect() {
      const waiting = await currentWaiting();
      // Kept as they were when the store cannot answer (as the other depth gauges are).
      if (!waiting) return;
      // Domains drop out of the top list as their queues drain: start every answered scrape from no series.
      this.reset();
      const top = live?.current.admin.metricsTopDomains ?? DEFAULT_TOP_DOMAINS;
      for (const [domain, jobs] of Object.entries(topDomains(waiting.byDomain, top))) this.set({ domain }, jobs);
    },
  });
  new Gauge({
    name: 'sealgate_inbound_connections',
    help: 'Open inbound SMTP connections per listener (counted from TCP accept, as the connection caps count them)',
    labelNames: ['listener'] as const,
    registers,
    collect() {
      if (!inbound) return;
      for (const [listener, open] of Object.entries(inbound.connections())) this.set({ listener }, open);
    },
  });
  new Gauge({
    name: 'sealgate_config_reloads_total',
    help: 'Configuration reloads applied since start (SIGHUP, sealgate reload, POST /api/v1/reload)',
    registers,
    collect() {
      if (live) this.set(live.status().reloads);
    },
  });
  new Gauge({
    name: 'sealgate_config_reload_failures_total',
    help: 'Configuration reloads refused since start (the running configuration stayed as it was)',
    registers,
    collect() {
      if (live) this.set(live.status().failedReloads);
    },
  });
  new Gauge({
    name: 'sealgate_config_last_reload_timestamp_seconds',
    help: 'Unix time of the last reload attempt, applied or refused (0: none since start)',
    registers,
    collect() {
      if (!live) return;
      const at = live.status().lastReloadAt;
      this.set(at === null ? 0 : Date.parse(at) / 1000);
    },
  });
  new Gauge({
    name: 'sealgate_config_loaded_timestamp_seconds',
    help: 'Unix time the running configuration was read (start or last applied reload)',
    registers,
    collect() {
      if (live) this.set(Date.parse(live.status().loadedAt) / 1000);
    },
  });
  new Gauge({
    name: 'sealgate_config_info',
    help: 'Always 1; the digest label is the running configuration digest (as /healthz shows it)',
    labelNames: ['digest'] as const,
    registers,
    collect() {
      if (!live) return;
      this.reset();
      this.set({ digest: live.status().digest }, 1);
    },
  });

  new Gauge({
    name: 'sealgate_store_up',
    help: 'Whether the last queue count from the store succeeded (1) or failed (0)',
    registers,
    async collect() {
      if (store) this.set((await currentCounts()) ? 1 : 0);
    },
  });
  new Gauge({
    name: 'sealgate_queue_jobs',
    help: 'Queue jobs (one per message and recipient domain) by state',
    labelNames: ['state'] as const,
    registers,
    async collect() {
      const counts = await currentCounts();
      if (counts) for (const state of JOB_STATES) this.set({ state }, counts.jobs[state] ?? 0);
    },
  });
  new Gauge({
    name: 'sealgate_fallback_items',
    help: 'Fallback (secure portal) items by state',
    labelNames: ['state'] as const,
    registers,
    async collect() {
      const counts = await currentCounts();
      if (counts) for (const state of FALLBACK_STATES) this.set({ state }, counts.fallback[state] ?? 0);
    },
  });
  new Gauge({
    name: 'sealgate_quarantined_entries',
    help: 'Damaged queue entries currently set aside (kept until queue.quarantineRetention has passed)',
    registers,
    async collect() {
      const counts = await currentCounts();
      if (counts) this.set(counts.quarantined ?? 0);
    },
  });

  return {
    registry,
    messagesAccepted,
    messagesRefused,
    recipients,
    deliveryLatency,
    outboundTls,
    inboundTls,
    mtaStsLookups,
    quarantined,
    watchStore(target) {
      store = target;
      cached = undefined;
      cachedWaiting = undefined;
    },
    watchInbound(target) {
      inbound = target;
    },
    watchConfig(target) {
      live = target;
    },
    recordSettled(claimed, result) {
      const at = now();
      for (const r of result.recipients) {
        recipients.inc({ outcome: r.outcome, reason: r.evidence.reason });
        if (r.outcome !== 'deferred') deliveryLatency.observe({ outcome: r.outcome }, Math.max(0, (at - claimed.message.receivedAt) / 1000));
      }
      // Every recipient of one attempt shares the attempt's MX list: count its TLS sessions once.
      const attempts = (result.recipients[0]?.evidence as Partial<DeliveryEvidence> | undefined)?.mxAttempts ?? [];
      for (const attempt of attempts) {
        if (attempt.tls?.protocol) outboundTls.inc({ protocol: attempt.tls.protocol, cipher: attempt.tls.cipher ?? 'unknown' });
      }
    },
    recordMtaSts(result) {
      mtaStsLookups.inc({ result: mtaStsLookupResult(result) });
    },
    recordQuarantined(entry) {
      quarantined.inc({ kind: entry.kind, code: entry.code });
    },
    async render() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}

export function mtaStsLookupResult(result: MtaStsResult): MtaStsLookupResult {
  if (result.source === 'fetched') return 'fetched';
  if (result.error !== null) return 'failed';
  if (result.source === 'cache') return 'cached';
  return 'none';
}

/** The `top` domains with the most waiting jobs (ties by name), the others summed under "other" (present only when some are left). */
export function topDomains(byDomain: Record<string, number>, top: number): Record<string, number> {
  const sorted = Object.entries(byDomain).sort(([a, x], [b, y]) => y - x || (a < b ? -1 : a > b ? 1 : 0));
  const out: Record<string, number> = {};
  let other = 0;
  for (const [i, [domain, jobs]] of sorted.entries()) {
    // A recipient domain literally named "other" is summed there too, so the label stays unambiguous.
    if (i < top && domain !== 'other') out[domain] = jobs;
    else other += jobs;
  }
  if (other > 0) out.other = other;
  return out;
}
