import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../src/log/logger';
import { CLAIM_NAMESPACE, lastCompletePeriod, nextRunAt, reportFileName, ReportScheduler, SETTLE_MS, type GeneratedReport, type ReportSchedulerDeps } from '../../src/report/schedule';
import { reportClock, TEST_CLOCK_ENV } from '../../src/report/runtime';
import type { ReportFormat, ReportRequest } from '../../src/report/types';
import type { EvidenceRecordInput } from '../../src/store/types';

/** The report schedule without sockets: periods, catch-up, idempotence, atomic files, the evidence record, the mail claim. */

const at = (iso: string) => Date.parse(iso);

describe('report periods (UTC)', () => {
  it('daily: the previous UTC day, across a year end', () => {
    expect(lastCompletePeriod('daily', at('2026-11-30T05:00:00Z'))).toEqual({ from: at('2026-11-29T00:00:00Z'), to: at('2026-11-30T00:00:00Z'), firstDay: '2026-11-29', lastDay: '2026-11-29' });
    expect(lastCompletePeriod('daily', at('2026-01-01T00:00:00Z'))).toMatchObject({ firstDay: '2025-12-31', lastDay: '2025-12-31' });
    expect(lastCompletePeriod('daily', at('2025-12-31T23:59:59.999Z'))).toMatchObject({ firstDay: '2025-12-30' });
  });

  it('weekly: the previous Monday 00:00 to Monday 00:00', () => {
    // 2026-11-30 is a Monday.
    const week = { from: at('2026-11-23T00:00:00Z'), to: at('2026-11-30T00:00:00Z'), firstDay: '2026-11-23', lastDay: '2026-11-29' };
    expect(lastCompletePeriod('weekly', at('2026-12-02T12:00:00Z'))).toEqual(week);
    expect(lastCompletePeriod('weekly', at('2026-11-30T00:00:00Z'))).toEqual(week);
    expect(lastCompletePeriod('weekly', at('2026-12-06T23:59:59Z'))).toEqual(week);
    expect(lastCompletePeriod('weekly', at('2026-11-29T23:59:59Z'))).toMatchObject({ firstDay: '2026-11-16', lastDay: '2026-11-22' });
  });

  it('monthly: the previous calendar month (leap February, year end)', () => {
    expect(lastCompletePeriod('monthly', at('2024-03-15T08:00:00Z'))).toEqual({ from: at('2024-02-01T00:00:00Z'), to: at('2024-03-01T00:00:00Z'), firstDay: '2024-02-01', lastDay: '2024-02-29' });
    expect(lastCompletePeriod('monthly', at('2026-01-01T00:00:00Z'))).toMatchObject({ firstDay: '2025-12-01', lastDay: '2025-12-31' });
    expect(lastCompletePeriod('monthly', at('2026-03-01T00:00:00Z'))).toMatchObject({ firstDay: '2026-02-01', lastDay: '2026-02-28' });
  });

  it('the next run is the end of the current period plus the settle time', () => {
    expect(nextRunAt('daily', at('2026-11-30T05:00:00Z'))).toBe(at('2026-12-01T00:00:00Z') + SETTLE_MS);
    // Just after midnight, inside the settle time: today at 00:05.
    expect(nextRunAt('daily', at('2026-11-30T00:02:00Z'))).toBe(at('2026-11-30T00:00:00Z') + SETTLE_MS);
    expect(nextRunAt('daily', at('2026-11-30T00:00:00Z') + SETTLE_MS)).toBe(at('2026-12-01T00:00:00Z') + SETTLE_MS);
    expect(nextRunAt('weekly', at('2026-12-02T12:00:00Z'))).toBe(at('2026-12-07T00:00:00Z') + SETTLE_MS);
    expect(nextRunAt('monthly', at('2026-12-02T12:00:00Z'))).toBe(at('2027-01-01T00:00:00Z') + SETTLE_MS);
    expect(nextRunAt('monthly', at('2024-02-10T00:00:00Z'))).toBe(at('2024-03-01T00:00:00Z') + SETTLE_MS);
  });

  it('file names carry the inclusive first and last day, as `sealgate report --from --to` takes them', () => {
    expect(reportFileName(lastCompletePeriod('monthly', at('2024-03-15T00:00:00Z')), 'pdf')).toBe('sealgate-report-2024-02-01_2024-02-29.pdf');
  });
});

/** A shared in-memory store: the evidence log and the claim cache two relays on one Redis would share. */
function sharedStore() {
  const records: EvidenceRecordInput[] = [];
  const cache = new Map<string, number>();
  let failAppend = false;
  return {
    records,
    cache,
    failNextAppend: () => (failAppend = true),
    log: {
      appendEvidence: async (inputs: EvidenceRecordInput[]) => {
        if (failAppend) {
          failAppend = false;
          throw new Error('evidence log unavailable');
        }
        records.push(...inputs);
        return [];
      },
    } as unknown as ReportSchedulerDeps['log'],
    claims: {
      cacheIncrement: async (ns: string, key: string) => {
        const next = (cache.get(`${ns}|${key}`) ?? 0) + 1;
        cache.set(`${ns}|${key}`, next);
        return next;
      },
      cacheDelete: async (ns: string, key: string) => {
        cache.delete(`${ns}|${key}`);
      },
    },
  };
}

describe('ReportScheduler.runOnce', () => {
  const NOW = at('2026-11-30T06:00:00Z');
  let folder: string;
  beforeEach(() => {
    folder = mkdtempSync(path.join(os.tmpdir(), 'sealgate-reports-'));
  });
  afterEach(() => rmSync(folder, { recursive: true, force: true }));

  function scheduler(store: ReturnType<typeof sharedStore>, over: Partial<ReportSchedulerDeps> = {}) {
    const produced: Array<[ReportRequest, ReportFormat]> = [];
    const mailed: GeneratedReport[] = [];
    const deps: ReportSchedulerDeps = {
      schedule: 'daily',
      folder: path.join(folder, 'reports'),
      formats: ['html', 'csv'],
      produce: async (request, format) => {
        produced.push([request, format]);
        return Buffer.from(`${format} report ${request.from}-${request.to}\n`);
      },
      log: store.log,
      claims: store.claims,
      logger: silentLogger(),
      now: () => NOW,
      ...over,
    };
    return { scheduler: new ReportScheduler(deps), produced, mailed, deps };
  }

  it('writes each format for yesterday, atomically, and records size and SHA-256 of each file in the evidence log', async () => {
    const store = sharedStore();
    const { scheduler: s, produced } = scheduler(store);
    const result = await s.runOnce();
    expect(result).toMatchObject({ written: true, mail: 'off', period: { firstDay: '2026-11-29', lastDay: '2026-11-29' } });
    const day = { from: at('2026-11-29T00:00:00Z'), to: at('2026-11-30T00:00:00Z') };
    expect(produced).toEqual([
      [day, 'html'],
      [day, 'csv'],
    ]);
    expect(readdirSync(path.join(folder, 'reports')).sort()).toEqual(['sealgate-report-2026-11-29_2026-11-29.csv', 'sealgate-report-2026-11-29_2026-11-29.html']);
    const html = readFileSync(path.join(folder, 'reports', 'sealgate-report-2026-11-29_2026-11-29.html'));
    expect(store.records).toHaveLength(1);
    expect(store.records[0]).toMatchObject({ kind: 'report-generated', actor: 'relay', queueId: null, recipient: null, at: NOW });
    expect(store.records[0]!.data).toEqual({
      schedule: 'daily',
      period: { from: '2026-11-29T00:00:00.000Z', to: '2026-11-30T00:00:00.000Z', firstDay: '2026-11-29', lastDay: '2026-11-29' },
      formats: ['html', 'csv'],
      files: [
        { name: 'sealgate-report-2026-11-29_2026-11-29.html', format: 'html', size: html.length, sha256: createHash('sha256').update(html).digest('hex') },
        expect.objectContaining({ name: 'sealgate-report-2026-11-29_2026-11-29.csv', format: 'csv' }),
      ],
    });
  });

  it('idempotent: a second run (or a restart) finds the files and writes and records nothing', async () => {
    const store = sharedStore();
    const first = scheduler(store);
    await first.scheduler.runOnce();
    const again = scheduler(store);
    expect(await again.scheduler.runOnce()).toMatchObject({ written: false, mail: 'off' });
    expect(again.produced).toHaveLength(0);
    expect(store.records).toHaveLength(1);
  });

  it('catch-up: a relay that was down over several period ends writes the last complete period at start', async () => {
    const store = sharedStore();
    const { scheduler: s } = scheduler(store, { schedule: 'weekly', now: () => at('2026-12-03T10:00:00Z') });
    expect((await s.runOnce()).period).toMatchObject({ firstDay: '2026-11-23', lastDay: '2026-11-29' });
    expect(readdirSync(path.join(folder, 'reports'))).toContain('sealgate-report-2026-11-23_2026-11-29.html');
  });

  it('inside the settle time after midnight, the day before yesterday is still the last complete one', async () => {
    const store = sharedStore();
    const { scheduler: s } = scheduler(store, { now: () => at('2026-11-30T00:01:00Z') });
    expect((await s.runOnce()).period.firstDay).toBe('2026-11-28');
  });

  it('the evidence log failing leaves no file (not even a temp one) and the next run writes the report', async () => {
    const store = sharedStore();
    store.failNextAppend();
    const { scheduler: s } = scheduler(store);
    await expect(s.runOnce()).rejects.toThrow('evidence log unavailable');
    expect(readdirSync(path.join(folder, 'reports'))).toEqual([]);
    expect(await s.runOnce()).toMatchObject({ written: true });
    expect(readdirSync(path.join(folder, 'reports'))).toHaveLength(2);
    expect(store.records).toHaveLength(1);
  });

  it('a format already on disk is kept and fingerprinted; only the missing one is produced', async () => {
    const store = sharedStore();
    const dir = path.join(folder, 'reports');
    const { scheduler: s, produced } = scheduler(store);
    await s.runOnce();
    rmSync(path.join(dir, 'sealgate-report-2026-11-29_2026-11-29.csv'));
    writeFileSync(path.join(dir, 'sealgate-report-2026-11-29_2026-11-29.html'), 'kept');
    produced.length = 0;
    await s.runOnce();
    expect(produced.map(([, f]) => f)).toEqual(['csv']);
    expect(readFileSync(path.join(dir, 'sealgate-report-2026-11-29_2026-11-29.html'), 'utf8')).toBe('kept');
    expect((store.records[1]!.data.files as Array<{ size: number }>)[0]!.size).toBe(4);
  });

  it('two relays on one store: both write their files, only the one that wins the claim mails the report', async () => {
    const store = sharedStore();
    const mailed: string[] = [];
    const mail = (who: string) => async (report: GeneratedReport) => {
      mailed.push(`${who}:${report.files.map((f) => f.name).join(',')}`);
      return `q-${who}`;
    };
    const a = scheduler(store, { mail: mail('a') });
    const b = scheduler(store, { mail: mail('b'), folder: path.join(folder, 'b') });
    const [ra, rb] = await Promise.all([a.scheduler.runOnce(), b.scheduler.runOnce()]);
    expect([ra.mail, rb.mail].sort()).toEqual(['claimed', 'queued']);
    expect(mailed).toHaveLength(1);
    expect(mailed[0]).toMatch(/^[ab]:sealgate-report-2026-11-29_2026-11-29\.html,sealgate-report-2026-11-29_2026-11-29\.csv$/);
    expect([...store.cache.keys()]).toEqual([`${CLAIM_NAMESPACE}|daily 2026-11-29 2026-11-29`]);
    // Later runs (restarts) never mail it again.
    expect(await a.scheduler.runOnce()).toMatchObject({ written: false, mail: 'claimed' });
    expect(mailed).toHaveLength(1);
  });

  it('queueing the mail failing releases the claim; the next run mails the files already on disk', async () => {
    const store = sharedStore();
    let fail = true;
    const mailed: GeneratedReport[] = [];
    const { scheduler: s } = scheduler(store, {
      mail: async (report) => {
        if (fail) throw new Error('store unavailable');
        mailed.push(report);
        return 'q1';
      },
    });
    expect(await s.runOnce()).toMatchObject({ written: true, mail: 'failed' });
    expect(store.cache.size).toBe(0);
    fail = false;
    expect(await s.runOnce()).toMatchObject({ written: false, mail: 'queued', queueId: 'q1' });
    expect(mailed[0]!.files.map((f) => f.content.toString())).toEqual([`html report ${at('2026-11-29T00:00:00Z')}-${at('2026-11-30T00:00:00Z')}\n`, expect.stringMatching(/^csv report/)]);
    expect(store.records).toHaveLength(1);
  });
});

describe('ReportScheduler timer', () => {
  it('runs at start, and stop() clears the timer and waits for the run in flight', async () => {
    const folder = mkdtempSync(path.join(os.tmpdir(), 'sealgate-reports-'));
    try {
      const store = sharedStore();
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const s = new ReportScheduler({
        schedule: 'daily',
        folder,
        formats: ['json'],
        produce: async () => {
          await gate;
          return Buffer.from('{}');
        },
        log: store.log,
        claims: store.claims,
        logger: silentLogger(),
        now: () => at('2026-11-30T06:00:00Z'),
      });
      s.start();
      await new Promise((resolve) => setTimeout(resolve, 50));
      const stopping = s.stop();
      let stopped = false;
      void stopping.then(() => (stopped = true));
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(stopped).toBe(false);
      release();
      await stopping;
      expect(store.records).toHaveLength(1);
      expect(readdirSync(folder)).toEqual(['sealgate-report-2026-11-29_2026-11-29.json']);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
});

describe('reportClock (the schedule test clock)', () => {
  it('is the real clock unless SEALGATE_TEST_REPORT_CLOCK is set; then it starts there and advances with the real one', () => {
    let real = 1_000_000;
    expect(reportClock({}, () => real)()).toBe(1_000_000);
    const clock = reportClock({ [TEST_CLOCK_ENV]: '2026-12-01T06:00:00Z' }, () => real);
    expect(clock()).toBe(at('2026-12-01T06:00:00Z'));
    real += 5_000;
    expect(clock()).toBe(at('2026-12-01T06:00:05Z'));
    expect(() => reportClock({ [TEST_CLOCK_ENV]: 'tomorrow' })).toThrow(/not an ISO time/);
  });
});
