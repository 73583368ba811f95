import { cpus, totalmem } from 'node:os';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { RunFigures } from './measure';

export interface TargetCheck {
  target: string;
  measured: string;
  pass: boolean;
}

export interface Machine {
  nproc: number;
  memoryGiB: number;
  cpuModel: string;
  node: string;
  postfix: string;
  redis: string;
}

export function machine(): Machine {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const version = (command: string, args: string[]): string => {
    try {
      return (
        execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
          .trim()
          .split('\n')[0] ?? ''
      );
    } catch {
      return 'unknown';
    }
  };
  return {
    nproc: cpus().length,
    memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    cpuModel: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? 'unknown',
    node: process.version,
    postfix: version('/usr/sbin/postconf', ['-d', '-h', 'mail_version']),
    redis: version('redis-server', ['--version']),
  };
}

const fixed = (value: number, digits: number): string => (Number.isFinite(value) ? value.toFixed(digits) : 'n/a');
const mb = (bytes: number): string => fixed(bytes / 1024 ** 2, 1);

interface Row {
  name: string;
  value: (f: RunFigures) => number;
  format: (n: number) => string;
  /** No ratio column for this row (counts, not costs). */
  noRatio?: boolean;
}

const ROWS: Row[] = [
  { name: 'relay processes', value: (f) => f.processes, format: (n) => String(n), noRatio: true },
  { name: 'submissions/s', value: (f) => f.submissionsPerSecond, format: (n) => fixed(n, 1) },
  { name: 'end-to-end msg/s', value: (f) => f.endToEndPerSecond, format: (n) => fixed(n, 1) },
  { name: 'latency p50 (ms)', value: (f) => f.latencyP50, format: (n) => fixed(n, 0) },
  { name: 'latency p95 (ms)', value: (f) => f.latencyP95, format: (n) => fixed(n, 0) },
  { name: 'latency p99 (ms)', value: (f) => f.latencyP99, format: (n) => fixed(n, 0) },
  { name: 'CPU-ms / message (relay processes incl. children)', value: (f) => f.cpuMsPerMessage, format: (n) => fixed(n, 2) },
  { name: '… of which kernel', value: (f) => f.systemCpuPer1000, format: (n) => fixed(n, 2) },
  { name: 'Redis server CPU-ms / message', value: (f) => f.storeCpuMsPerMessage ?? NaN, format: (n) => (Number.isFinite(n) ? fixed(n, 2) : '') },
  { name: 'bench harness CPU-ms / message', value: (f) => f.harnessCpuPer1000, format: (n) => fixed(n, 2) },
  { name: 'peak RSS (MB)', value: (f) => f.peakRss, format: mb },
  { name: 'connections to sinks', value: (f) => f.sinkConnections, format: (n) => String(n) },
  {
    name: 'Postfix deliveries over a reused connection (%)',
    value: (f) => (f.deliveriesSent ? (100 * (f.deliveriesOverReusedConnection ?? 0)) / f.deliveriesSent : NaN),
    format: (n) => (Number.isFinite(n) ? fixed(n, 0) : ''),
    noRatio: true,
  },
  { name: 'arrived / accepted', value: (f) => f.arrived, format: (n) => String(n), noRatio: true },
];

/**
 * Rows are figures, columns are relays, then the ratio of each other column to the baseline (the
 * Postfix with connection reuse, see legs.ts baselineOf). Rows no run has a value for are left out.
 */
export function comparisonTable(runs: RunFigures[], baseline?: RunFigures): string {
  const others = runs.filter((run) => run !== baseline);
  const header = ['figure', ...runs.map((run) => run.relay), ...(baseline ? others.map((run) => `${run.relay} / ${baseline.relay}`) : [])];
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const row of ROWS) {
    if (!runs.some((run) => Number.isFinite(row.value(run)))) continue;
    const cells = runs.map((run) => (row.name.startsWith('arrived') ? `${run.arrived} / ${run.accepted}` : row.format(row.value(run))));
    const ratio = (run: RunFigures): string => {
      const value = row.value(run) / row.value(baseline!);
      return row.noRatio || !Number.isFinite(value) ? '' : fixed(value, 2);
    };
    lines.push(`| ${[row.name, ...cells, ...(baseline ? others.map(ratio) : [])].join(' | ')} |`);
  }
  for (const run of runs.filter((r) => r.peakPss !== undefined)) lines.push('', `${run.relay} peak summed PSS (shared pages split): ${mb(run.peakPss!)} MB.`);
  const clustered = runs.filter((r) => r.storeServers !== undefined && r.storeCpuMsPerMessage !== undefined);
  if (clustered.length > 0) {
    const counts = clustered.map((run) => `${run.relay}: ${run.storeServers}`).join(', ');
    lines.push('', `Redis server CPU on a Redis Cluster is the sum over every redis-server process of the cluster, masters and replicas (${counts}).`);
  }
  return lines.join('\n');
}

export function targetTable(checks: TargetCheck[]): string {
  return ['| target | measured | result |', '|---|---|---|', ...checks.map((c) => `| ${c.target} | ${c.measured} | ${c.pass ? 'PASS' : 'FAIL'} |`)].join('\n');
}
