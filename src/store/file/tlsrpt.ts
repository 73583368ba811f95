import { promises as fs } from 'node:fs';
import { TLSRPT_DAY, type TlsRptCounters, type TlsRptTally } from '../roles';
import type { SpoolLayout } from './layout';

/** One increment as a line of the day's file. */
interface Line {
  d: string;
  p: string;
  f: string | null;
  n: number;
}

function checkDay(day: string): void {
  if (!TLSRPT_DAY.test(day)) throw new TypeError(`not a TLS-RPT day (YYYY-MM-DD): ${day}`);
}

/**
 * TLS-RPT counters as one append-only file per UTC day (tlsrpt/<day>.jsonl): counting is one small O_APPEND
 * write, no lock and no read; a report reads the day once and adds the lines up. A torn last line (a crash
 * mid-write) is skipped. Counters are statistics, not mail: written without fsync.
 */
export class FileTlsRptCounters implements TlsRptCounters {
  constructor(private readonly layout: SpoolLayout) {}

  async tlsRptCount(day: string, domain: string, policy: string, detail: string | null, count = 1): Promise<void> {
    checkDay(day);
    const line: Line = { d: domain, p: policy, f: detail, n: count };
    await fs.appendFile(this.layout.tlsRptDayFile(day), `${JSON.stringify(line)}\n`);
  }

  async tlsRptDomains(day: string): Promise<string[]> {
    const domains = new Set((await this.lines(day)).map((l) => l.d));
    return [...domains].sort();
  }

  async tlsRptRead(domain: string, day: string): Promise<TlsRptTally[]> {
    const sums = new Map<string, TlsRptTally>();
    for (const line of await this.lines(day)) {
      if (line.d !== domain) continue;
      const key = JSON.stringify([line.p, line.f]);
      const tally = sums.get(key);
      if (tally) tally.count += line.n;
      else sums.set(key, { policy: line.p, detail: line.f, count: line.n });
    }
    return [...sums.values()];
  }

  async tlsRptPrune(before: string): Promise<number> {
    checkDay(before);
    let names: string[];
    try {
      names = await fs.readdir(this.layout.tlsrpt);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw err;
    }
    let removed = 0;
    for (const name of names) {
      const day = name.endsWith('.jsonl') ? name.slice(0, -6) : '';
      if (!TLSRPT_DAY.test(day) || day >= before) continue;
      await fs.rm(this.layout.tlsRptDayFile(day), { force: true });
      removed++;
    }
    return removed;
  }

  private async lines(day: string): Promise<Line[]> {
    checkDay(day);
    let text: string;
    try {
      text = await fs.readFile(this.layout.tlsRptDayFile(day), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const lines: Line[] = [];
    for (const raw of text.split('\n')) {
      if (!raw) continue;
      try {
        const line = JSON.parse(raw) as Partial<Line>;
        if (typeof line.d === 'string' && typeof line.p === 'string' && (line.f === null || typeof line.f === 'string') && Number.isSafeInteger(line.n) && line.n! >= 0) {
          lines.push(line as Line);
        }
      } catch {
        // A line torn by a crash mid-append: that one increment is lost, the rest still count.
      }
    }
    return lines;
  }
}
