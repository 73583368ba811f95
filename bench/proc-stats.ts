import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU time and memory of processes, read from /proc (Linux only).
 *
 * CPU: utime + stime of a process, plus cutime + cstime (the CPU time of its children that have
 * exited and been reaped). For a process tree whose children come and go (Postfix's master forks
 * smtpd, cleanup, smtp, ... and reaps them), "master's own + reaped children + live children"
 * sampled before and after a run counts every child's CPU exactly once.
 */

const CLOCK_TICKS_PER_SECOND = 100; // getconf CLK_TCK on Linux

export interface ProcStat {
  pid: number;
  ppid: number;
  /** utime + stime, seconds. */
  ownCpu: number;
  /** cutime + cstime (reaped children), seconds. */
  childCpu: number;
  /** Kernel-mode part of the two above (stime + cstime), seconds. */
  systemCpu: number;
}

export function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // The command name is in parentheses and may contain spaces: fields start after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const num = (index: number): number => Number(fields[index] ?? 0);
  // After ')': state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
  return {
    pid,
    ppid: num(1),
    ownCpu: (num(11) + num(12)) / CLOCK_TICKS_PER_SECOND,
    childCpu: (num(13) + num(14)) / CLOCK_TICKS_PER_SECOND,
    systemCpu: (num(12) + num(14)) / CLOCK_TICKS_PER_SECOND,
  };
}

/**
 * VmRSS and VmHWM (peak RSS) in bytes, and RSS split into anonymous memory (heap, buffers) and file-backed pages
 * mapped into the process (an LMDB environment's pages: page cache the kernel can take back); undefined once the
 * process is gone.
 */
export function readMemory(pid: number): { rss: number; hwm: number; anon: number; file: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'latin1');
  } catch {
    return undefined;
  }
  const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM'), anon: kb('RssAnon'), file: kb('RssFile') };
}

/** Proportional set size in bytes (shared pages split between their users); 0 when unreadable. */
export function readPss(pid: number): number {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'latin1');
    return Number(/^Pss:\s+(\d+) kB/m.exec(text)?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

/** The process and its live descendants (by ppid), read from one scan of /proc. */
export function processTree(rootPid: number): ProcStat[] {
  const all: ProcStat[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readStat(Number(name));
    if (stat) all.push(stat);
  }
  const inTree = new Set<number>([rootPid]);
  // Parents before children is not guaranteed: iterate until no new member (bounded by depth).
  for (let round = 0; round < 8; round++) {
    let grew = false;
    for (const stat of all) {
      if (!inTree.has(stat.pid) && inTree.has(stat.ppid)) {
        inTree.add(stat.pid);
        grew = true;
      }
    }
    if (!grew) break;
  }
  return all.filter((stat) => inTree.has(stat.pid));
}

export interface CpuSeconds {
  total: number;
  /** Kernel-mode share of total (system calls: file system, fsync, sockets). */
  system: number;
}

/** CPU seconds used so far by a process tree: root's own and reaped children, plus live descendants' own. */
export function treeCpuSeconds(rootPid: number): CpuSeconds {
  const tree = processTree(rootPid);
  if (!tree.some((stat) => stat.pid === rootPid)) return { total: 0, system: 0 };
  let total = 0;
  let system = 0;
  for (const stat of tree) {
    total += stat.ownCpu + stat.childCpu;
    system += stat.systemCpu;
  }
  return { total, system };
}

/** Sum of RSS and of PSS over a process tree, bytes. */
export function treeMemory(rootPid: number): { rss: number; pss: number; processes: number } {
  let rss = 0;
  let pss = 0;
  const tree = processTree(rootPid);
  for (const stat of tree) {
    rss += readMemory(stat.pid)?.rss ?? 0;
    pss += readPss(stat.pid);
  }
  return { rss, pss, processes: tree.length };
}
