import { createHash, randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { access, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../log/logger';
import type { EvidenceLog, KeyValueCache } from '../store/roles';
import type { ReportFormat, ReportRequest } from './types';

/**
 * Scheduled reports (reports.schedule): at start and after each period ends, the report of the last complete
 * period is written into reports.folder, once (its files already there: nothing to do), and recorded in the
 * evidence log with the size and SHA-256 of every file, so the report's own fingerprint is in the chain. When
 * mail is configured, one relay (the first to claim the period through the store) queues it to the staff.
 */

export type ReportSchedule = 'daily' | 'weekly' | 'monthly';

const DAY_MS = 86_400_000;
/** A period counts as complete this long after it ended, so outcomes decided just before the end are logged first. */
export const SETTLE_MS = 5 * 60_000;
/** Retry after a failed run (the evidence log unreachable, a full disk). */
export const RETRY_MS = 5 * 60_000;
/** Longest single timer: a month is longer than setTimeout's limit, and a long sleep should notice a clock change. */
const MAX_TIMER_MS = 6 * 3_600_000;
/** A mail claim outlives any period by a margin, so a late relay never mails a period twice. */
const CLAIM_TTL_MS = 40 * DAY_MS;
export const CLAIM_NAMESPACE = 'report-mail-claim';

/** A report period [from, to) in epoch ms, with its first and last UTC days (both inclusive, as `sealgate report` takes them). */
export interface ReportPeriod {
  from: number;
  to: number;
  firstDay: string;
  lastDay: string;
}

const day = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/** The start (00:00 UTC) of the period holding `at`: its day, its week's Monday, or its month's 1st. */
export function periodStart(schedule: ReportSchedule, at: number): number {
  const d = new Date(at);
  const midnight = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  if (schedule === 'daily') return midnight;
  if (schedule === 'weekly') return midnight - ((d.getUTCDay() + 6) % 7) * DAY_MS;
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}

/** The last period that ended at or before `at`: yesterday, last Monday-to-Monday week, or last calendar month (UTC). */
export function lastCompletePeriod(schedule: ReportSchedule, at: number): ReportPeriod {
  const to = periodStart(schedule, at);
  const from = periodStart(schedule, to - 1);
  return { from, to, firstDay: day(from), lastDay: day(to - 1) };
}

/** When the next period ends (the first period boundary after `at`). */
export function nextPeriodEnd(schedule: ReportSchedule, at: number): number {
  const start = periodStart(schedule, at);
  if (schedule === 'daily') return start + DAY_MS;
  if (schedule === 'weekly') return start + 7 * DAY_MS;
  const d = new Date(start);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

/** When the schedule runs next: the end of the current period plus SETTLE_MS. */
export function nextRunAt(schedule: ReportSchedule, at: number): number {
  const pending = lastCompletePeriod(schedule, at - SETTLE_MS);
  // Still inside the settle time of a period that just ended: that period is due first.
  if (at < pending.to + SETTLE_MS) return pending.to + SETTLE_MS;
  return nextPeriodEnd(schedule, at - SETTLE_MS) + SETTLE_MS;
}

/** `sealgate-report-<first day>_<last day>.<format>`: the days are inclusive, like `sealgate report --from --to`. */
export function reportFileName(period: Pick<ReportPeriod, 'firstDay' | 'lastDay'>, format: ReportFormat): string {
  return `sealgate-report-${period.firstDay}_${period.lastDay}.${format}`;
}

/** The claim key of a period's mail: one relay per (schedule, period) queues it. */
export function claimKey(schedule: ReportSchedule, period: Pick<ReportPeriod, 'firstDay' | 'lastDay'>): string {
  return `${schedule} ${period.firstDay} ${period.lastDay}`;
}

export interface ReportFileFacts {
  name: string;
  format: ReportFormat;
  size: number;
  sha256: string;
}

/** What one run wrote: the period, the files (with their fingerprints), and the contents for mailing. */
export interface GeneratedReport {
  schedule: ReportSchedule;
  period: ReportPeriod;
  files: Array<ReportFileFacts & { content: Buffer }>;
}

export interface RunResult {
  period: ReportPeriod;
  /** False when every file was already there (written by an earlier run or another relay on the same folder). */
  written: boolean;
  files: ReportFileFacts[];
  /** What became of the mail: queued now, queued earlier or by another relay (claimed), failed (retried), or off. */
  mail: 'queued' | 'claimed' | 'failed' | 'off';
  queueId?: string;
}

export interface ReportSchedulerDeps {
  schedule: ReportSchedule;
  folder: string;
  formats: readonly ReportFormat[];
  /** Builds one format of the report for a period (report/build.ts + produceReport in the relay). */
  produce(request: ReportRequest, format: ReportFormat): Promise<Buffer>;
  log: Pick<EvidenceLog, 'appendEvidence'>;
  claims: Pick<KeyValueCache, 'cacheIncrement' | 'cacheDelete'>;
  /** Queues the report mail and returns its queue id; absent when reports.mailTo is empty. */
  mail?: (report: GeneratedReport) => Promise<string>;
  logger: Logger;
  now?: () => number;
}

/** Writes `content` to `file` so a reader sees the whole file or none: a temp file, fsync, rename, fsync of the folder. */
export async function writeFileAtomic(file: string, content: Buffer): Promise<void> {
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const handle = await open(temp, 'wx', 0o640);
    try {
      await handle.writeFile(content);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, file);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  await syncFolder(path.dirname(file));
}

async function syncFolder(folder: string): Promise<void> {
  const handle = await open(folder, 'r');
  try {
    await handle.sync();
  } catch {
    // Some file systems refuse fsync on a directory; the rename itself has happened.
  } finally {
    await handle.close();
  }
}

const exists = (file: string): Promise<boolean> =>
  access(file, fsConstants.F_OK).then(
    () => true,
    () => false,
  );

const sha256 = (content: Buffer): string => createHash('sha256').update(content).digest('hex');

export class ReportScheduler {
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private started = false;
  private stopped = false;

  constructor(private readonly deps: ReportSchedulerDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** Runs once now (catch-up after downtime), then after each period ends. */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.schedule(0);
  }

  /** Stops the timer and waits for a run in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private schedule(delay: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(
      () => {
        let failed = false;
        this.running = this.runOnce()
          .then(
            (result) => {
              failed = result.mail === 'failed';
            },
            (err: unknown) => {
              failed = true;
              this.deps.logger.error({ event: 'report-schedule-failed', err: (err as Error).message }, 'the scheduled report could not be written; trying again later');
            },
          )
          .finally(() => {
            this.running = undefined;
            const now = this.now();
            this.schedule(failed ? RETRY_MS : Math.max(1_000, nextRunAt(this.deps.schedule, now) - now));
          });
      },
      Math.min(delay, MAX_TIMER_MS),
    );
    this.timer.unref();
  }

  /**
   * One run: the last complete period's report, unless its files are all there. Files are written to temp names,
   * recorded in the evidence log, then renamed into place: a report on disk always has its record (a crash between
   * the two writes the report again, with a second record). Then, when mail is on, the period is claimed through
   * the store and only the relay that wins queues the mail; the claim outlives the period, so a restart or a second
   * relay never mails it twice, and a failed queueing releases it for the next try.
   */
  async runOnce(): Promise<RunResult> {
    const { schedule, folder, formats, logger } = this.deps;
    const period = lastCompletePeriod(schedule, this.now() - SETTLE_MS);
    const targets = formats.map((format) => ({ format, name: reportFileName(period, format), file: path.join(folder, reportFileName(period, format)) }));
    const present = await Promise.all(targets.map((t) => exists(t.file)));
    const written = !present.every(Boolean);
    let files: GeneratedReport['files'] | undefined;
    if (written) {
      files = await this.write(period, targets, present);
      logger.info({ event: 'report-generated', schedule, from: period.firstDay, to: period.lastDay, files: facts(files) }, 'scheduled report written');
    }
    const result = (mail: RunResult['mail'], queueId?: string): RunResult => ({
      period,
      written,
      files: files ? facts(files) : [],
      mail,
      ...(queueId ? { queueId } : {}),
    });
    if (!this.deps.mail) return result('off');

    const key = claimKey(schedule, period);
    if ((await this.deps.claims.cacheIncrement(CLAIM_NAMESPACE, key, CLAIM_TTL_MS)) !== 1) {
      if (written) logger.info({ event: 'report-mail-claimed-elsewhere', schedule, from: period.firstDay, to: period.lastDay }, 'another relay mails this report');
      return result('claimed');
    }
    try {
      files ??= await Promise.all(
        targets.map(async (t) => {
          const content = await readFile(t.file);
          return { name: t.name, format: t.format, size: content.length, sha256: sha256(content), content };
        }),
      );
      const queueId = await this.deps.mail({ schedule, period, files });
      logger.info({ event: 'report-mail-queued', schedule, from: period.firstDay, to: period.lastDay, queueId }, 'scheduled report queued for its recipients (compliant TLS only)');
      return result('queued', queueId);
    } catch (err) {
      // Released, so the next run (here or on another relay) mails it; the files and their record stay.
      await this.deps.claims.cacheDelete(CLAIM_NAMESPACE, key).catch(() => undefined);
      logger.error(
        { event: 'report-mail-failed', schedule, from: period.firstDay, to: period.lastDay, err: (err as Error).message },
        'the scheduled report could not be queued for mail; trying again later',
      );
      return result('failed');
    }
  }

  private async write(period: ReportPeriod, targets: Array<{ format: ReportFormat; name: string; file: string }>, present: boolean[]): Promise<GeneratedReport['files']> {
    const { schedule, folder, formats } = this.deps;
    await mkdir(folder, { recursive: true, mode: 0o750 });
    const request: ReportRequest = { from: period.from, to: period.to };
    const files: GeneratedReport['files'] = [];
    const staged: Array<{ temp: string; file: string }> = [];
    try {
      for (const [i, target] of targets.entries()) {
        // A format already on disk (an earlier run stopped half-way) is kept as it is and fingerprinted again.
        const content = present[i] ? await readFile(target.file) : await this.deps.produce(request, target.format);
        files.push({ name: target.name, format: target.format, size: content.length, sha256: sha256(content), content });
        if (!present[i]) {
          const temp = `${target.file}.${process.pid}.${randomBytes(4).toString('hex')}.staged`;
          staged.push({ temp, file: target.file });
          await writeFileAtomic(temp, content);
        }
      }
      await this.deps.log.appendEvidence([
        {
          kind: 'report-generated',
          at: this.now(),
          queueId: null,
          messageId: null,
          recipient: null,
          sender: null,
          actor: 'relay',
          data: {
            schedule,
            period: { from: new Date(period.from).toISOString(), to: new Date(period.to).toISOString(), firstDay: period.firstDay, lastDay: period.lastDay },
            formats: [...formats],
            files: facts(files),
          },
        },
      ]);
      for (const s of staged) await rename(s.temp, s.file);
      await syncFolder(folder);
    } catch (err) {
      await Promise.all(staged.map((s) => rm(s.temp, { force: true })));
      throw err;
    }
    return files;
  }
}

function facts(files: GeneratedReport['files']): ReportFileFacts[] {
  return files.map(({ name, format, size, sha256: hash }) => ({ name, format, size, sha256: hash }));
}
