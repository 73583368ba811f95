/**
 * The legs of the compare mode and the decisions around them: which legs a command line selects,
 * which run is the baseline of the ratios, which throughput each Sealgate leg must reach against
 * it, and whether a Postfix leg really reused its TLS connections. Pure functions, unit-tested in
 * test/bench/legs.test.ts.
 */

export const LEG_IDS = ['lmdb', 'file', 'redis', 'redis-multi', 'redis-cluster', 'redis-cluster-multi', 'default', 'postfix-reuse', 'postfix'] as const;
export type LegId = (typeof LEG_IDS)[number];

/** Sealgate's stores: the two embedded ones (lmdb the default) and Redis. */
export const BACKENDS = ['lmdb', 'file', 'redis'] as const;
export type Backend = (typeof BACKENDS)[number];

export interface LegSpec {
  id: LegId;
  /** Sealgate's store, or 'postfix'. */
  kind: Backend | 'postfix';
  /** Redis legs: one redis-server, or a local Redis Cluster (3 masters, 1 replica each); default 'single'. */
  redis?: 'single' | 'cluster';
  /** Runs `--processes` relay processes on one store instead of one. */
  multiProcess?: boolean;
  /** End-to-end throughput it must reach, as a multiple of Postfix with reuse; none: figures only. */
  throughputGoal?: number;
  /** What the table's column says. */
  label(processes: number): string;
}

export const LEGS: Record<LegId, LegSpec> = {
  lmdb: { id: 'lmdb', kind: 'lmdb', throughputGoal: 2, label: () => 'Sealgate (lmdb)' },
  file: { id: 'file', kind: 'file', throughputGoal: 2, label: () => 'Sealgate (file)' },
  redis: { id: 'redis', kind: 'redis', throughputGoal: 2.5, label: () => 'Sealgate (redis)' },
  'redis-multi': { id: 'redis-multi', kind: 'redis', multiProcess: true, throughputGoal: 2.5, label: (n) => `Sealgate (redis, ${n} processes)` },
  // A topology for availability (every 250 waits for a replica), measured for sizing: no throughput target.
  'redis-cluster': { id: 'redis-cluster', kind: 'redis', redis: 'cluster', label: () => 'Sealgate (Redis Cluster)' },
  'redis-cluster-multi': {
    id: 'redis-cluster-multi',
    kind: 'redis',
    redis: 'cluster',
    multiProcess: true,
    label: (n) => `Sealgate (Redis Cluster, ${n} processes)`,
  },
  default: { id: 'default', kind: 'lmdb', throughputGoal: 2, label: () => 'Sealgate (npm start, default config, lmdb)' },
  'postfix-reuse': { id: 'postfix-reuse', kind: 'postfix', label: () => 'Postfix (TLS connection reuse)' },
  postfix: { id: 'postfix', kind: 'postfix', label: () => 'Postfix (new TLS connection per message)' },
};

/** Sealgate legs first (tuned lmdb build, the default start, the file store, then Redis and Redis Cluster), then the two Postfix peers. */
const RUN_ORDER: LegId[] = ['lmdb', 'default', 'file', 'redis', 'redis-multi', 'redis-cluster', 'redis-cluster-multi', 'postfix-reuse', 'postfix'];

/**
 * The legs to run: `--legs` when given (in run order, duplicates dropped), else every leg whose
 * store is in `--backends`, and the Postfix legs unless `--no-postfix`.
 */
export function selectLegs(input: { legs?: string; backends: Backend[]; postfix: boolean }): LegId[] {
  if (input.legs !== undefined) {
    const asked = input.legs
      .split(',')
      .map((leg) => leg.trim())
      .filter(Boolean);
    const unknown = asked.filter((leg) => !(LEG_IDS as readonly string[]).includes(leg));
    if (unknown.length > 0) throw new Error(`--legs: unknown leg ${unknown.join(', ')} (one or more of ${LEG_IDS.join(', ')})`);
    if (asked.length === 0) throw new Error(`--legs: give one or more of ${LEG_IDS.join(', ')}`);
    return RUN_ORDER.filter((leg) => asked.includes(leg));
  }
  return RUN_ORDER.filter((leg) => {
    const { kind } = LEGS[leg];
    return kind === 'postfix' ? input.postfix : input.backends.includes(kind);
  });
}

/** The part of a run's figures these decisions read. */
export interface LegRun {
  leg: LegId;
  relay: string;
  messages: number;
  accepted: number;
  endToEndPerSecond: number;
  cpuMsPerMessage: number;
  sinkConnections: number;
  processes: number;
}

/**
 * The run the ratios are taken against: Postfix with TLS connection reuse (the peer an admin who
 * cares about throughput would run); the untuned Postfix only when the reuse leg was not run.
 */
export function baselineOf<T extends LegRun>(runs: T[]): T | undefined {
  return runs.find((run) => run.leg === 'postfix-reuse') ?? runs.find((run) => run.leg === 'postfix');
}

/**
 * End-to-end throughput each Sealgate leg must reach against Postfix with connection reuse: 2× on
 * the embedded stores (the default start included), 2.5× on one Redis. Postfix legs and the Redis
 * Cluster legs (figures for sizing) have none.
 */
export function throughputGoal(leg: LegId): number | undefined {
  return LEGS[leg].throughputGoal;
}

/** Relay processes a leg runs: `--processes` for the multi-process legs, else one. */
export function processesOf(leg: LegId, processes: number): number {
  return LEGS[leg].multiProcess ? processes : 1;
}

/** CPU per message each Sealgate leg may use, as a share of the reuse Postfix's. */
export const CPU_SHARE_GOAL = 0.5;

/**
 * Connection reuse is real when the sinks saw at most one connection per this many messages (the
 * untuned Postfix opens one per message; Sealgate and a reusing Postfix a few per destination).
 */
export const REUSE_MESSAGES_PER_CONNECTION = 4;

export function reusesConnections(run: Pick<LegRun, 'accepted' | 'sinkConnections'>): boolean {
  return run.accepted > 0 && run.sinkConnections * REUSE_MESSAGES_PER_CONNECTION <= run.accepted;
}

export interface Check {
  target: string;
  measured: string;
  pass: boolean;
}

/** The compare mode's target checks: every leg delivered all, the reuse Postfix reused, and the Sealgate legs' throughput and CPU against it. */
export function compareChecks<T extends LegRun & { arrived: number; submitFailures: number }>(runs: T[], options: { size: number }): Check[] {
  const checks: Check[] = [];
  for (const run of runs) {
    if (run.arrived < run.accepted || run.submitFailures > 0) {
      checks.push({ target: `${run.relay}: every message accepted and delivered`, measured: `${run.arrived}/${run.messages}`, pass: false });
    }
  }
  const reuse = runs.find((run) => run.leg === 'postfix-reuse');
  if (!reuse) return checks;
  checks.push({
    target: `${reuse.relay} reuses connections: connections to sinks ≤ messages / ${REUSE_MESSAGES_PER_CONNECTION}`,
    measured: `${reuse.sinkConnections} connections for ${reuse.accepted} messages`,
    pass: reusesConnections(reuse),
  });
  // The throughput targets are stated for 10 KB messages.
  if (options.size !== 10 * 1024) return checks;
  for (const run of runs) {
    const goal = throughputGoal(run.leg);
    if (goal === undefined) continue;
    const ratio = run.endToEndPerSecond / reuse.endToEndPerSecond;
    checks.push({ target: `end-to-end throughput ${run.relay} ≥ ${goal}× Postfix with reuse`, measured: `${ratio.toFixed(2)}×`, pass: ratio >= goal });
    const share = run.cpuMsPerMessage / reuse.cpuMsPerMessage;
    checks.push({
      target: `CPU per message ${run.relay} ≤ ${CPU_SHARE_GOAL} × Postfix with reuse`,
      measured: `${run.cpuMsPerMessage.toFixed(2)} / ${reuse.cpuMsPerMessage.toFixed(2)} ms = ${share.toFixed(2)}`,
      pass: share <= CPU_SHARE_GOAL,
    });
  }
  return checks;
}

/** A pair of legs that differ only in the number of relay processes, and what the scaling line calls their store. */
export interface ScaleOut {
  one: LegId;
  many: LegId;
  store: string;
}

export const REDIS_SCALE_OUT: ScaleOut = { one: 'redis', many: 'redis-multi', store: 'one Redis' };
export const CLUSTER_SCALE_OUT: ScaleOut = { one: 'redis-cluster', many: 'redis-cluster-multi', store: 'a Redis Cluster (3 masters, 1 replica each)' };

/**
 * "1 process: … msg/s, … CPU-ms/msg; N processes: …" for a pair of legs (default the one-Redis
 * pair), when both ran. The store server's CPU (summed over every node of a cluster) is added
 * when the runs measured it.
 */
export function scalingSummary(runs: Array<LegRun & { storeCpuMsPerMessage?: number }>, pair: ScaleOut = REDIS_SCALE_OUT): string | undefined {
  const one = runs.find((run) => run.leg === pair.one);
  const many = runs.find((run) => run.leg === pair.many);
  if (!one || !many) return undefined;
  const store = (run: { storeCpuMsPerMessage?: number }): string => (run.storeCpuMsPerMessage !== undefined ? ` (+${run.storeCpuMsPerMessage.toFixed(2)} Redis)` : '');
  const line = (run: LegRun & { storeCpuMsPerMessage?: number }): string =>
    `${run.processes} process${run.processes === 1 ? '' : 'es'}: ${run.endToEndPerSecond.toFixed(1)} msg/s, ${run.cpuMsPerMessage.toFixed(2)} CPU-ms per message${store(run)}`;
  return `Redis scale-out on ${pair.store}: ${line(one)}; ${line(many)} (throughput × ${(many.endToEndPerSecond / one.endToEndPerSecond).toFixed(2)}).`;
}
