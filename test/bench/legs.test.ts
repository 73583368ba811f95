import { baselineOf, CLUSTER_SCALE_OUT, compareChecks, LEGS, processesOf, reusesConnections, scalingSummary, selectLegs, throughputGoal, type LegId, type LegRun } from '../../bench/legs';

function run(leg: LegId, figures: Partial<LegRun & { arrived: number; submitFailures: number }> = {}): LegRun & { arrived: number; submitFailures: number } {
  return {
    leg,
    relay: `relay ${leg}`,
    messages: 1000,
    accepted: 1000,
    arrived: 1000,
    submitFailures: 0,
    endToEndPerSecond: 100,
    cpuMsPerMessage: 8,
    sinkConnections: 10,
    processes: 1,
    ...figures,
  };
}

describe('selectLegs', () => {
  it('runs every leg by default, Sealgate legs first and both Postfix peers last', () => {
    expect(selectLegs({ backends: ['lmdb', 'file', 'redis'], postfix: true })).toEqual([
      'lmdb',
      'default',
      'file',
      'redis',
      'redis-multi',
      'redis-cluster',
      'redis-cluster-multi',
      'postfix-reuse',
      'postfix',
    ]);
  });

  it('maps --backends onto the legs of that store and --no-postfix drops both Postfix legs', () => {
    expect(selectLegs({ backends: ['lmdb'], postfix: true })).toEqual(['lmdb', 'default', 'postfix-reuse', 'postfix']);
    expect(selectLegs({ backends: ['file'], postfix: true })).toEqual(['file', 'postfix-reuse', 'postfix']);
    expect(selectLegs({ backends: ['redis'], postfix: false })).toEqual(['redis', 'redis-multi', 'redis-cluster', 'redis-cluster-multi']);
  });

  it('takes --legs as given, in run order, whatever --backends says', () => {
    expect(selectLegs({ legs: 'postfix, redis-multi,default,redis-multi', backends: ['file'], postfix: false })).toEqual(['default', 'redis-multi', 'postfix']);
  });

  it('runs the Redis Cluster legs after the one-Redis legs and before Postfix, and only with Redis', () => {
    expect(selectLegs({ backends: ['lmdb', 'file'], postfix: false })).toEqual(['lmdb', 'default', 'file']);
    expect(selectLegs({ legs: 'postfix-reuse,redis-cluster-multi,redis,redis-cluster', backends: ['file'], postfix: false })).toEqual([
      'redis',
      'redis-cluster',
      'redis-cluster-multi',
      'postfix-reuse',
    ]);
  });

  it('refuses unknown or empty leg lists', () => {
    expect(() => selectLegs({ legs: 'file,postfix-tuned', backends: ['file'], postfix: true })).toThrow(/unknown leg postfix-tuned/);
    expect(() => selectLegs({ legs: ' , ', backends: ['file'], postfix: true })).toThrow(/give one or more/);
  });
});

describe('baselineOf', () => {
  it('is the Postfix with connection reuse, wherever it ran', () => {
    const runs = [run('file'), run('postfix'), run('postfix-reuse'), run('redis')];
    expect(baselineOf(runs)).toBe(runs[2]);
  });

  it('falls back to the untuned Postfix, and to none without Postfix', () => {
    const runs = [run('file'), run('postfix')];
    expect(baselineOf(runs)).toBe(runs[1]);
    expect(baselineOf([run('file'), run('redis')])).toBeUndefined();
  });
});

describe('throughputGoal', () => {
  it('asks 2× of the embedded-store legs (the default start included), 2.5× of the Redis legs, nothing of Postfix', () => {
    expect(throughputGoal('file')).toBe(2);
    expect(throughputGoal('lmdb')).toBe(2);
    expect(throughputGoal('default')).toBe(2);
    expect(throughputGoal('redis')).toBe(2.5);
    expect(throughputGoal('redis-multi')).toBe(2.5);
    expect(throughputGoal('postfix-reuse')).toBeUndefined();
    expect(throughputGoal('postfix')).toBeUndefined();
  });

  it('asks nothing of the Redis Cluster legs (figures for sizing: every 250 waits for a replica)', () => {
    expect(throughputGoal('redis-cluster')).toBeUndefined();
    expect(throughputGoal('redis-cluster-multi')).toBeUndefined();
  });
});

describe('processesOf', () => {
  it('gives --processes to the multi-process legs and one process to the others', () => {
    expect(processesOf('redis-multi', 3)).toBe(3);
    expect(processesOf('redis-cluster-multi', 3)).toBe(3);
    expect(processesOf('redis-cluster', 3)).toBe(1);
    expect(processesOf('redis', 3)).toBe(1);
    expect(processesOf('file', 3)).toBe(1);
  });
});

describe('LEGS', () => {
  it('runs the cluster legs on a cluster of the Redis store, and the others on one Redis', () => {
    expect(LEGS['redis-cluster']).toMatchObject({ kind: 'redis', redis: 'cluster' });
    expect(LEGS['redis-cluster-multi']).toMatchObject({ kind: 'redis', redis: 'cluster', multiProcess: true });
    expect(LEGS.redis.redis ?? 'single').toBe('single');
    expect(LEGS['redis-multi'].redis ?? 'single').toBe('single');
    expect(LEGS['redis-cluster-multi'].label(3)).toBe('Sealgate (Redis Cluster, 3 processes)');
  });
});

describe('reusesConnections', () => {
  it('holds when the sinks saw at most one connection per four messages', () => {
    expect(reusesConnections({ accepted: 300, sinkConnections: 75 })).toBe(true);
    expect(reusesConnections({ accepted: 300, sinkConnections: 76 })).toBe(false);
    expect(reusesConnections({ accepted: 300, sinkConnections: 300 })).toBe(false);
    expect(reusesConnections({ accepted: 0, sinkConnections: 0 })).toBe(false);
  });
});

describe('compareChecks', () => {
  const tenKb = { size: 10 * 1024 };

  it('checks throughput and CPU of each Sealgate leg against the reuse Postfix, not the untuned one', () => {
    const runs = [
      run('default', { endToEndPerSecond: 300, cpuMsPerMessage: 3 }),
      run('redis', { endToEndPerSecond: 240, cpuMsPerMessage: 5 }),
      run('postfix-reuse', { endToEndPerSecond: 150, cpuMsPerMessage: 8 }),
      run('postfix', { endToEndPerSecond: 50, cpuMsPerMessage: 20, sinkConnections: 1000 }),
    ];
    const checks = compareChecks(runs, tenKb);
    const find = (text: string) => checks.find((check) => check.target.includes(text))!;
    expect(find('throughput relay default')).toMatchObject({ measured: '2.00×', pass: true });
    expect(find('throughput relay redis')).toMatchObject({ measured: '1.60×', pass: false });
    expect(find('throughput relay redis').target).toContain('≥ 2.5× Postfix with reuse');
    expect(find('CPU per message relay default')).toMatchObject({ measured: '3.00 / 8.00 ms = 0.38', pass: true });
    expect(find('CPU per message relay redis')).toMatchObject({ pass: false });
    expect(find('reuses connections')).toMatchObject({ measured: '10 connections for 1000 messages', pass: true });
    expect(checks.some((check) => check.target.includes('relay postfix '))).toBe(false);
  });

  it('fails a reuse Postfix that opened a connection per message', () => {
    const checks = compareChecks([run('postfix-reuse', { sinkConnections: 1000 })], tenKb);
    expect(checks).toEqual([expect.objectContaining({ pass: false, measured: '1000 connections for 1000 messages' })]);
  });

  it('checks no ratio without the reuse Postfix, nor for sizes the targets do not name', () => {
    expect(compareChecks([run('file'), run('postfix')], tenKb)).toEqual([]);
    const other = compareChecks([run('file'), run('postfix-reuse')], { size: 100 * 1024 });
    expect(other.map((check) => check.target)).toEqual([expect.stringContaining('reuses connections')]);
  });

  it('checks no throughput or CPU of a Redis Cluster leg, but still that it lost nothing', () => {
    const runs = [run('redis-cluster', { endToEndPerSecond: 60, cpuMsPerMessage: 9 }), run('redis-cluster-multi', { arrived: 999 }), run('postfix-reuse', { endToEndPerSecond: 150 })];
    const targets = compareChecks(runs, tenKb).map((check) => check.target);
    expect(targets.some((target) => target.includes('throughput relay redis-cluster') || target.includes('CPU per message relay redis-cluster'))).toBe(false);
    expect(targets).toContain('relay redis-cluster-multi: every message accepted and delivered');
  });

  it('reports every leg that lost or refused mail', () => {
    const checks = compareChecks([run('file', { arrived: 998 }), run('redis', { submitFailures: 1 })], tenKb);
    expect(checks.map((check) => [check.target, check.pass])).toEqual([
      ['relay file: every message accepted and delivered', false],
      ['relay redis: every message accepted and delivered', false],
    ]);
  });
});

describe('scalingSummary', () => {
  it('compares one Redis process with several', () => {
    const summary = scalingSummary([run('redis', { endToEndPerSecond: 200, cpuMsPerMessage: 3 }), run('redis-multi', { endToEndPerSecond: 300, cpuMsPerMessage: 3.5, processes: 2 })]);
    expect(summary).toBe('Redis scale-out on one Redis: 1 process: 200.0 msg/s, 3.00 CPU-ms per message; 2 processes: 300.0 msg/s, 3.50 CPU-ms per message (throughput × 1.50).');
  });

  it('says nothing unless both Redis legs ran', () => {
    expect(scalingSummary([run('redis'), run('file')])).toBeUndefined();
    expect(scalingSummary([run('redis'), run('redis-cluster-multi', { processes: 2 })])).toBeUndefined();
  });

  it('compares one process on a Redis Cluster with several, with the CPU of all its Redis servers', () => {
    const runs = [
      run('redis', { endToEndPerSecond: 200 }),
      run('redis-multi', { endToEndPerSecond: 220, processes: 2 }),
      { ...run('redis-cluster', { endToEndPerSecond: 80, cpuMsPerMessage: 6 }), storeCpuMsPerMessage: 2.5 },
      { ...run('redis-cluster-multi', { endToEndPerSecond: 100, cpuMsPerMessage: 7, processes: 2 }), storeCpuMsPerMessage: 3 },
    ];
    expect(scalingSummary(runs, CLUSTER_SCALE_OUT)).toBe(
      'Redis scale-out on a Redis Cluster (3 masters, 1 replica each): 1 process: 80.0 msg/s, 6.00 CPU-ms per message (+2.50 Redis); ' +
        '2 processes: 100.0 msg/s, 7.00 CPU-ms per message (+3.00 Redis) (throughput × 1.25).',
    );
    expect(scalingSummary(runs)).toMatch(/^Redis scale-out on one Redis: 1 process: 200\.0 msg\/s.*\(throughput × 1\.10\)\.$/);
  });
});
