import type { RunFigures } from '../../bench/measure';
import { comparisonTable } from '../../bench/report';
import type { LegId } from '../../bench/legs';

function figures(leg: LegId, relay: string, values: Partial<RunFigures> = {}): RunFigures {
  return {
    relay,
    leg,
    processes: 1,
    messages: 100,
    accepted: 100,
    submitFailures: 0,
    arrived: 100,
    duplicates: 0,
    submissionsPerSecond: 100,
    endToEndPerSecond: 100,
    latencyP50: 10,
    latencyP95: 20,
    latencyP99: 30,
    latencyMax: 40,
    cpuPer1000: 4,
    cpuMsPerMessage: 4,
    systemCpuPer1000: 1,
    harnessCpuPer1000: 2,
    peakRss: 100 * 1024 ** 2,
    sinkConnections: 4,
    elapsedSeconds: 1,
    ...values,
  };
}

const cells = (table: string, row: string): string[] =>
  table
    .split('\n')
    .find((line) => line.startsWith(`| ${row} |`))!
    .split('|')
    .slice(2, -1)
    .map((cell) => cell.trim());

describe('comparisonTable', () => {
  const file = figures('file', 'Sealgate (file)', { endToEndPerSecond: 300, cpuMsPerMessage: 4 });
  const multi = figures('redis-multi', 'Sealgate (redis, 2 processes)', { processes: 2, endToEndPerSecond: 450, cpuMsPerMessage: 3, storeCpuMsPerMessage: 1.25 });
  const reuse = figures('postfix-reuse', 'Postfix (TLS connection reuse)', { endToEndPerSecond: 150, cpuMsPerMessage: 8, sinkConnections: 40, peakPss: 80 * 1024 ** 2 });
  const untuned = figures('postfix', 'Postfix (new TLS connection per message)', { endToEndPerSecond: 100, cpuMsPerMessage: 16, sinkConnections: 100 });

  it('takes every ratio against the baseline it is given and names it in the header', () => {
    const table = comparisonTable([file, multi, reuse, untuned], reuse);
    const header = table.split('\n')[0]!;
    expect(header).toContain('| Sealgate (file) / Postfix (TLS connection reuse) |');
    expect(header).toContain('| Postfix (new TLS connection per message) / Postfix (TLS connection reuse) |');
    expect(header).not.toContain('Postfix (TLS connection reuse) / Postfix (TLS connection reuse)');
    expect(cells(table, 'end-to-end msg/s')).toEqual(['300.0', '450.0', '150.0', '100.0', '2.00', '3.00', '0.67']);
    expect(cells(table, 'CPU-ms / message (relay processes incl. children)')).toEqual(['4.00', '3.00', '8.00', '16.00', '0.50', '0.38', '2.00']);
  });

  it('shows the process count and Redis CPU without ratios where they mean nothing', () => {
    const table = comparisonTable([file, multi, reuse], reuse);
    expect(cells(table, 'relay processes')).toEqual(['1', '2', '1', '', '']);
    expect(cells(table, 'Redis server CPU-ms / message')).toEqual(['', '1.25', '', '', '']);
    expect(cells(table, 'arrived / accepted')).toEqual(['100 / 100', '100 / 100', '100 / 100', '', '']);
    expect(table).toContain('Postfix (TLS connection reuse) peak summed PSS (shared pages split): 80.0 MB.');
  });

  it('shows the share of Postfix deliveries over a reused connection', () => {
    const withLog = { ...reuse, deliveriesSent: 200, deliveriesOverReusedConnection: 170 };
    const table = comparisonTable([file, withLog], withLog);
    expect(cells(table, 'Postfix deliveries over a reused connection (%)')).toEqual(['', '85', '']);
  });

  it('says that the Redis CPU of a cluster leg is the sum over all its nodes, and nothing of the kind for one Redis', () => {
    const cluster = figures('redis-cluster', 'Sealgate (Redis Cluster)', { storeCpuMsPerMessage: 4.5, storeServers: 6 });
    const table = comparisonTable([multi, cluster, reuse], reuse);
    expect(cells(table, 'Redis server CPU-ms / message')).toEqual(['1.25', '4.50', '', '', '']);
    expect(table).toContain('Redis server CPU on a Redis Cluster is the sum over every redis-server process of the cluster, masters and replicas (Sealgate (Redis Cluster): 6).');
    expect(comparisonTable([multi, reuse], reuse)).not.toContain('sum over every redis-server process');
  });

  it('leaves the Redis row out when no leg used Redis, and ratios out without a baseline', () => {
    const table = comparisonTable([file]);
    expect(table).not.toContain('Redis server CPU-ms');
    expect(table).not.toContain('reused connection');
    expect(table.split('\n')[0]).toBe('| figure | Sealgate (file) |');
  });
});
