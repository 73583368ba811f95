import type { Config } from '../config/schema';
import type { Logger } from '../log/logger';
import { loadDkimSigner } from '../mail/dkim';
import type { DnsResolver } from '../policy/resolver';
import { buildTrustStore } from '../policy/trust';
import type { JobQueue, KeyValueCache } from '../store/roles';
import { TlsRptScheduler } from './schedule';
import { createReportSender, type ReportSender, type ReportSource } from './send';

export interface TlsRptSendingDeps {
  config: Config;
  store: Pick<JobQueue, 'enqueue'> & Pick<KeyValueCache, 'cacheIncrement'>;
  resolver: Pick<DnsResolver, 'resolveTxt' | 'lookup'>;
  source: ReportSource;
  logger: Logger;
  now?: () => number;
}

/**
 * The report sender as the relay and `sealgate tlsrpt send` build it: tlsrpt.dkim's key read once (an unusable key
 * throws DkimKeyError, so the relay refuses to start), https trust from tlsrpt.extraCaFile, else mtaSts.extraCaFile.
 */
export function createConfiguredSender(deps: TlsRptSendingDeps): ReportSender {
  const { config, logger } = deps;
  const signer = loadDkimSigner(config.tlsrpt.dkim, 'tlsrpt.dkim');
  const ca = buildTrustStore(config.tlsrpt.extraCaFile ?? config.mtaSts.extraCaFile);
  return createReportSender({ config, resolver: deps.resolver, store: deps.store, source: deps.source, signer, ...(ca ? { ca } : {}), logger, ...(deps.now ? { now: deps.now } : {}) });
}

export interface TlsRptSending {
  sender: ReportSender;
  scheduler: TlsRptScheduler;
  close(): Promise<void>;
}

/** Starts the daily send (relay.ts, when tlsrpt.enabled); close() stops it and waits for a pass in flight. */
export function startTlsRptSending(deps: TlsRptSendingDeps): TlsRptSending {
  const { config, logger } = deps;
  const sender = createConfiguredSender(deps);
  if (!config.tlsrpt.dkim) {
    logger.warn({ event: 'tlsrpt-no-dkim' }, 'tlsrpt.dkim is not set: TLS reports go to https: destinations only; mailto: ones are skipped (never sent unsigned)');
  }
  const scheduler = new TlsRptScheduler({
    source: deps.source,
    claims: deps.store,
    send: (domain, day) => sender.send(domain, day),
    logger,
    maxDelay: config.tlsrpt.maxDelay,
    retrySchedule: config.tlsrpt.retrySchedule,
    ...(deps.now ? { now: deps.now } : {}),
  });
  scheduler.start();
  return { sender, scheduler, close: () => scheduler.stop() };
}
