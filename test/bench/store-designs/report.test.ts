import { percentile, summarize } from '../../../bench/store-designs/driver';
import { parseDesigns } from '../../../bench/store-designs/options';
import { designTable } from '../../../bench/store-designs/run-designs';

describe('store-designs figures', () => {
  it('takes percentiles by rank', () => {
    const values = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
    expect(percentile(values, 50)).toBe(5);
    expect(percentile(values, 99)).toBe(10);
    expect(percentile([], 50)).toBeNaN();
  });

  it('turns a run into per-message figures (CPU split, store server CPU)', () => {
    const figures = summarize('lmdb', { messages: 1000, wallMs: 2000, cpu: { user: 3_000_000, system: 1_000_000 }, acceptMs: [1, 2, 3], peakRss: 100 * 1024 ** 2, bodyBytesRead: 0 }, 0.5);
    expect(figures).toMatchObject({ perSecond: 500, cpuMsPerMessage: 4, userMsPerMessage: 3, systemMsPerMessage: 1, serverCpuMsPerMessage: 0.5, acceptP50Ms: 2, peakRssMb: 100 });
  });

  it('tables designs as columns with ratios to the first', () => {
    const run = (design: string, perSecond: number, cpu: number) =>
      summarize(design, { messages: 100, wallMs: 100_000 / perSecond, cpu: { user: cpu * 100_000, system: 0 }, acceptMs: [1], peakRss: 0, bodyBytesRead: 0 });
    const table = designTable([run('file-store', 50, 8), run('journal', 200, 2)]);
    expect(table).toContain('| figure | file-store | journal | journal / file-store |');
    expect(table).toMatch(/\| messages\/s \| 50 \| 200 \| 4\.00 \|/);
    expect(table).toMatch(/\| CPU-ms \/ message[^|]*\| 8\.000 \| 2\.000 \| 0\.25 \|/);
    // No design ran on Redis: no server CPU row.
    expect(table).not.toContain('store server');
  });
});

describe('parseDesigns', () => {
  it('defaults to the four designs the issue asks about', () => {
    expect(parseDesigns(undefined)).toEqual(['file-store', 'redis-store', 'lmdb-store', 'lmdb', 'journal']);
  });
  it('keeps the order given, once each, and refuses unknown names', () => {
    expect(parseDesigns('journal, lmdb-nooverlap,journal')).toEqual(['journal', 'lmdb-nooverlap']);
    expect(() => parseDesigns('sqlite')).toThrow(/unknown design sqlite/);
    expect(() => parseDesigns(',')).toThrow(/at least one/);
  });
});
