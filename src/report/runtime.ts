import type { Config } from '../config/schema';
import type { Logger } from '../log/logger';
import { loadDkimSigner } from '../mail/dkim';
import type { EvidenceLog, JobQueue, KeyValueCache } from '../store/roles';
import { buildReport, type PostureCheck } from './build';
import { produceReport } from './index';
import { createReportMailer } from './mail';
import { ReportScheduler } from './schedule';
import type { ReportData, ReportRequest } from './types';

/**
 * FOR TESTS ONLY: an ISO time (e.g. 2026-12-01T06:00:00Z) the report schedule's clock starts at, advancing with the
 * real clock from the relay's start, so an integration test can make "yesterday" the day it just sent mail on.
 * Only the schedule reads it (which period is due, the report's generation time); nothing else in the relay does.
 */
export const TEST_CLOCK_ENV = 'SEALGATE_TEST_REPORT_CLOCK';

/** The schedule's clock: the real one, or the test clock of TEST_CLOCK_ENV. */
export function reportClock(env: NodeJS.ProcessEnv = process.env, now: () => number = Date.now): () => number {
  const value = env[TEST_CLOCK_ENV];
  if (!value) return now;
  const start = Date.parse(value);
  if (Number.isNaN(start)) throw new Error(`${TEST_CLOCK_ENV}=${value}: not an ISO time`);
  const offset = start - now();
  return () => now() + offset;
}

export interface ReportScheduleDeps {
  config: Config;
  store: Pick<EvidenceLog, 'appendEvidence' | 'queryEvidence' | 'evidenceDays' | 'readEvidenceDay' | 'evidenceAnchors' | 'evidenceBase' | 'evidenceHead'> &
    Pick<KeyValueCache, 'cacheIncrement' | 'cacheDelete'> &
    Pick<JobQueue, 'enqueue'>;
  logger: Logger;
  /** The partner-posture check (`sealgate check` on the busiest domains); none: the section is left out. */
  posture?: PostureCheck;
  now?: () => number;
}

export interface ReportScheduleHandle {
  scheduler: ReportScheduler;
  close(): Promise<void>;
}

/**
 * Starts reports.schedule (null when it is off): the report is built from the evidence log once per period and
 * rendered in each of reports.formats; mail goes to reports.mailTo, DKIM-signed with reports.dkim (a key that
 * cannot be read throws here, so the relay refuses to start rather than send unsigned mail it was told to sign).
 */
export function startReportSchedule(deps: ReportScheduleDeps): ReportScheduleHandle | null {
  const { config, store, logger } = deps;
  const schedule = config.reports.schedule;
  if (schedule === 'off') return null;
  const now = deps.now ?? reportClock();
  const signer = loadDkimSigner(config.reports.dkim, 'reports.dkim');
  // One build per period serves every format.
  let built: { key: string; data: Promise<ReportData> } | undefined;
  const data = (request: ReportRequest): Promise<ReportData> => {
    const key = `${request.from}/${request.to}`;
    if (built?.key !== key) {
      const options = { relay: config.hostname, now: now(), postureDomains: config.reports.postureDomains, ...(deps.posture ? { posture: deps.posture } : {}) };
      built = { key, data: buildReport(store, request, options) };
      // A failed build is not kept: the next run builds again.
      built.data.catch(() => (built = undefined));
    }
    return built.data;
  };
  const scheduler = new ReportScheduler({
    schedule,
    folder: config.reports.folder,
    formats: config.reports.formats,
    produce: async (request, format) => (await produceReport(format, await data(request))).body,
    log: store,
    claims: store,
    ...(config.reports.mailTo.length > 0 ? { mail: createReportMailer({ config, store, signer }) } : {}),
    logger,
    now,
  });
  scheduler.start();
  logger.info({ event: 'report-schedule-started', schedule, folder: config.reports.folder, formats: config.reports.formats, mailTo: config.reports.mailTo.length }, 'scheduled compliance reports on');
  return {
    scheduler,
    close: async () => {
      built = undefined;
      await scheduler.stop();
    },
  };
}
