import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { DeliveryEvidence } from '../evidence/delivery';
import type { MtaStsResult } from '../policy/mta-sts';
import { JOB_STATES, type ClaimedJob, type FallbackState, type JobResult, type QuarantineEntry, type Store, type StoreCounts } from '../store/types';

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
  /** Queue and fallback depth gauges read this store's counts() at scrape time. */
  watchStore(store: Pick<Store, 'counts'>): void;
  /** One job attempt the store has recorded: recipient outcomes, latency of final ones, TLS of each MX session. */
  recordSettled(claimed: ClaimedJob, result: JobResult): void;
  recordMtaSts(result: MtaStsResult): void;
  /** One damaged entry the store set aside (the store's observer). */
  recordQuarantined(entry: QuarantineEntry): void;
  /** The exposition text and its content type. */
  render(): Promise<{ contentType: string; body: string }>;
}

/** Scrapes within this window reuse one counts() answer, so a busy scraper cannot load the store. */
const COUNTS_CACHE_MS = 2_000;
const FALLBACK_STATES: readonly FallbackState[] = ['ready', 'claimed', 'acked'];
// Submission to final outcome: seconds for a direct delivery, hours to days for retries and expiry.
const LATENCY_BUCKETS = [0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600, 5 * 24 * 3600];

export function createMetrics(options: { defaultMetrics?: boolean; now?: () => number } = {}): Metrics {
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

  let store: Pick<Store, 'counts'> | undefined;
  let cached: { at: number; counts: Promise<StoreCounts | undefined> } | undefined;
  const currentCounts = (): Promise<StoreCounts | undefined> => {
    if (!store) return Promise.resolve(undefined);
    if (!cached || now() - cached.at >= COUNTS_CACHE_MS) {
      // An unreachable store must not fail the whole scrape: sealgate_store_up says so instead.
      cached = { at: now(), counts: store.counts().catch(() => undefined) };
    }
    return cached.counts;
  };

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
