import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { startRedisCluster } from '../test/support/redis-cluster';
import { startRedis, type RedisHandle } from '../test/support/redis-server';
import type { MxTlsBehaviour } from '../test/support/world';
import { LEGS, processesOf, type Backend, type LegId } from './legs';
import type { DesignId } from './store-designs/options';
import { benchRedisPrefix, combineRelays, redisCpuSeconds, redisServersCpuSeconds, startPostfixRelay, startSealgate, type RelayUnderTest, type SealgateOptions } from './relays';
import type { SinkWorld } from './sink-world';

/** What every bench mode shares: the options, the cleanup list, the progress log. */

/** `all` runs every mode but store-designs (an in-process store measurement, not a relay comparison). */
export const MODES = ['compare', 'latency', 'queued', 'large', 'durability', 'all', 'store-designs'] as const;
export type Mode = (typeof MODES)[number];

export interface BenchOptions {
  mode: Mode;
  short: boolean;
  messages: number;
  size: number;
  connections: number;
  domains: number;
  mix: MxTlsBehaviour[];
  backends: Backend[];
  postfix: boolean;
  /** The compare mode's legs, in run order (bench/legs.ts selectLegs). */
  legs: LegId[];
  /** Sealgate processes of the redis-multi leg. */
  processes: number;
  from: 'build' | 'source';
  profileDir?: string;
  /** Extra node flags for every Sealgate process. */
  relayNodeFlags: string[];
  out: string;
  timeLimitSeconds: number;
  /** store-designs mode: the designs, in run order; the one large message's size (0: none); where their files go. */
  designs: DesignId[];
  largeSize: number;
  storeDir: string;
}

/** Everything started is stopped through here, in reverse order, also on SIGINT or the time limit. */
export class Cleanup {
  private readonly steps: Array<{ name: string; run: () => Promise<void> }> = [];
  add(name: string, run: () => Promise<void>): () => Promise<void> {
    const step = { name, run };
    this.steps.push(step);
    return async () => {
      const index = this.steps.indexOf(step);
      if (index >= 0) this.steps.splice(index, 1);
      await run();
    };
  }
  async all(): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) {
      await step.run().catch((error: Error) => process.stderr.write(`cleanup ${step.name}: ${error.message}\n`));
    }
  }
}

export function runId(): string {
  return randomBytes(4).toString('hex');
}

export interface Context {
  options: BenchOptions;
  cleanup: Cleanup;
  log(line: string): void;
}

/** Starts a Sealgate (and its Redis when the backend needs one), registered for cleanup. */
export async function sealgateFor(
  context: Context,
  sinks: SinkWorld,
  backend: Backend,
  extra: Partial<SealgateOptions> = {},
): Promise<{ relay: RelayUnderTest; stop: () => Promise<void>; redis?: RedisHandle }> {
  let redis: RedisHandle | undefined;
  let stopRedis: (() => Promise<void>) | undefined;
  if (backend === 'redis' && !extra.redisUrl) {
    redis = await startRedis();
    stopRedis = context.cleanup.add('redis', () => redis!.stop());
  }
  const relay = await startSealgate({
    world: sinks.world,
    backend,
    from: context.options.from,
    nodeFlags: context.options.relayNodeFlags,
    ...(redis ? { redisUrl: redis.url } : {}),
    ...(context.options.profileDir ? { cpuProfileDir: path.join(context.options.profileDir, extra.leg ?? backend) } : {}),
    ...extra,
  });
  const stopRelay = context.cleanup.add(relay.label, () => relay.stop());
  return {
    relay,
    redis,
    stop: async () => {
      await stopRelay();
      await stopRedis?.();
    },
  };
}

/** The Redis a Redis leg's relays share: one redis-server, or a local Redis Cluster. */
interface RedisForLeg {
  url: string;
  cluster?: { nodes: string[]; replicas: number };
  /** redis-server processes (a cluster's masters and replicas). */
  servers: number;
  cpuSeconds(): Promise<number>;
  stop(): Promise<void>;
}

/** The cluster the cluster legs run on: as test/support/redis-cluster.ts starts it for the tests. */
export const BENCH_CLUSTER = { masters: 3, replicasPerMaster: 1 } as const;

/**
 * Starts the Redis of a leg, registered for cleanup. A cluster (BENCH_CLUSTER, every node with
 * appendonly and appendfsync always, stopped by PID) is ready once the master of the relays' slot
 * has its replica online: before that every WAIT-confirmed 250 would fail.
 */
async function startRedisForLeg(context: Context, topology: 'single' | 'cluster'): Promise<RedisForLeg> {
  if (topology === 'single') {
    const redis = await startRedis();
    return { url: redis.url, servers: 1, cpuSeconds: () => redisCpuSeconds(redis.url), stop: context.cleanup.add('redis', () => redis.stop()) };
  }
  context.log(`  starting a Redis Cluster (${BENCH_CLUSTER.masters} masters, ${BENCH_CLUSTER.replicasPerMaster} replica each) on loopback`);
  // A failover needs the node timeout without an answer; Redis's own default (15 s) keeps a node slowed by
  // the loaded machine from being failed over mid-run, as the tests' 2 s could.
  const cluster = await startRedisCluster({ ...BENCH_CLUSTER, nodeTimeoutMs: 15_000 });
  const stop = context.cleanup.add('redis cluster', () => cluster.stop());
  try {
    await cluster.waitHealthy(`{${benchRedisPrefix()}}`, BENCH_CLUSTER.replicasPerMaster, 60_000);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    url: cluster.url,
    cluster: { nodes: cluster.urls.slice(1), replicas: BENCH_CLUSTER.replicasPerMaster },
    servers: cluster.urls.length,
    cpuSeconds: () => redisServersCpuSeconds(cluster.urls),
    stop,
  };
}

/**
 * Starts one compare-mode leg, registered for cleanup: a Sealgate (tuned build or the default
 * start), one or N Sealgates on one Redis or one Redis Cluster with the same prefix, or a Postfix
 * with or without reuse.
 */
export async function startLeg(context: Context, sinks: SinkWorld, leg: LegId): Promise<{ relay: RelayUnderTest; stop: () => Promise<void> }> {
  const spec = LEGS[leg];
  if (spec.kind === 'postfix') {
    const relay = await startPostfixRelay(sinks.world, sinks.nextHops, { reuse: leg === 'postfix-reuse' });
    return { relay, stop: context.cleanup.add(relay.label, () => relay.stop()) };
  }
  if (leg === 'default') return sealgateFor(context, sinks, spec.kind, { leg, label: spec.label(1), defaultStart: true });
  if (spec.kind !== 'redis') return sealgateFor(context, sinks, spec.kind, { leg, label: spec.label(1) });
  const processes = processesOf(leg, context.options.processes);
  const redis = await startRedisForLeg(context, spec.redis ?? 'single');
  // Every process joins the same Redis with the same URL (and so the same key prefix): one shared queue.
  const started: Array<{ relay: RelayUnderTest; stop: () => Promise<void> }> = [];
  try {
    for (let index = 1; index <= processes; index++) {
      const label = processes === 1 ? spec.label(1) : `${spec.label(processes)} #${index}`;
      started.push(await sealgateFor(context, sinks, 'redis', { leg, label, redisUrl: redis.url, ...(redis.cluster ? { redisCluster: redis.cluster } : {}) }));
    }
  } catch (error) {
    for (const one of started) await one.stop();
    await redis.stop();
    throw error;
  }
  const relay =
    processes === 1
      ? started[0]!.relay
      : combineRelays(
          started.map((one) => one.relay),
          leg,
          spec.label(processes),
        );
  relay.storeCpuSeconds = () => redis.cpuSeconds();
  if (redis.servers > 1) relay.storeServers = redis.servers;
  return {
    relay,
    stop: async () => {
      await Promise.all(started.map((one) => one.stop()));
      await redis.stop();
    },
  };
}
