/**
 * The legs of the compare mode and the decisions around them: which legs a command line selects,
 * which run is the baseline of the ratios, which throughput each Sealgate leg must reach against
 * it, and whether a Postfix leg really reused its TLS connections. Pure functions, unit-tested in
 * test/bench/legs.test.ts.
 */

export const LEG_IDS = ['file', 'redis', 'redis-multi', 'default', 'postfix-reuse', 'postfix'] as const;
export type LegId = (typeof LEG_IDS)[number];

export interface LegSpec {
  id: LegId;
  /** Sealgate's store, or 'postfix'. */
  kind: 'file' | 'redis' | 'postfix';
  /** What the table's column says. */
  label(processes: number): string;
}

export const LEGS: Record<LegId, LegSpec> = {
  file: { id: 'file', kind: 'file', label: () => 'Sealgate (file)' },
  redis: { id: 'redis', kind: 'redis', label: () => 'Sealgate (redis)' },
  'redis-multi': { id: 'redis-multi', kind: 'redis', label: (n) => `Sealgate (redis, ${n} processes)` },
  default: { id: 'default', kind: 'file', label: () => 'Sealgate (npm start, default config, file)' },
  'postfix-reuse': { id: 'postfix-reuse', kind: 'postfix', label: () => 'Postfix (TLS connection reuse)' },
  postfix: { id: 'postfix', kind: 'postfix', label: () => 'Postfix (new TLS connection per message)' },
};

/** Sealgate legs first (tuned build, then the default start), then the two Postfix peers. */
const RUN_ORDER: LegId[] = ['file', 'default', 'redis', 'redis-multi', 'postfix-reuse', 'postfix'];

/**
 * The legs to run: `--legs` when given (in run order, duplicates dropped), else every leg whose
 * store is in `--backends`, and the Postfix legs unless `--no-postfix`.
 */
export function selectLegs(input: { legs?: string; backends: Array<'file' | 'redis'>; postfix: boolean }): LegId[] {
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
 * the file store (the default start included), 2.5× on Redis. Postfix legs have none.
 */
export function throughputGoal(leg: LegId): number | undefined {
  switch (LEGS[leg].kind) {
    case 'file':
      return 2;
    case 'redis':
      return 2.5;
    default:
      return undefined;
  }
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

/** "1 process: … msg/s, … CPU-ms/msg; N processes: …" for the Redis legs, when both ran. */
export function scalingSummary(runs: LegRun[]): string | undefined {
  const one = runs.find((run) => run.leg === 'redis');
  const many = runs.find((run) => run.leg === 'redis-multi');
  if (!one || !many) return undefined;
  const line = (run: LegRun): string => `${run.processes} process${run.processes === 1 ? '' : 'es'}: ${run.endToEndPerSecond.toFixed(1)} msg/s, ${run.cpuMsPerMessage.toFixed(2)} CPU-ms per message`;
  return `Redis scale-out on one Redis: ${line(one)}; ${line(many)} (throughput × ${(many.endToEndPerSecond / one.endToEndPerSecond).toFixed(2)}).`;
}
