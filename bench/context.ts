import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { startRedis, type RedisHandle } from '../test/support/redis-server';
import type { MxTlsBehaviour } from '../test/support/world';
import { LEGS, type LegId } from './legs';
import type { DesignId } from './store-designs/options';
import { combineRelays, redisCpuSeconds, startPostfixRelay, startSealgate, type RelayUnderTest, type SealgateOptions } from './relays';
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
  backends: Array<'file' | 'redis'>;
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
  backend: 'file' | 'redis',
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

/**
 * Starts one compare-mode leg, registered for cleanup: a Sealgate (tuned build or the default
 * start), N Sealgates on one Redis with the same prefix, or a Postfix with or without reuse.
 */
export async function startLeg(context: Context, sinks: SinkWorld, leg: LegId): Promise<{ relay: RelayUnderTest; stop: () => Promise<void> }> {
  const spec = LEGS[leg];
  if (spec.kind === 'postfix') {
    const relay = await startPostfixRelay(sinks.world, sinks.nextHops, { reuse: leg === 'postfix-reuse' });
    return { relay, stop: context.cleanup.add(relay.label, () => relay.stop()) };
  }
  if (leg === 'default') return sealgateFor(context, sinks, 'file', { leg, label: spec.label(1), defaultStart: true });
  if (leg !== 'redis-multi') {
    const started = await sealgateFor(context, sinks, spec.kind, { leg, label: spec.label(1) });
    return withRedisCpu(started);
  }
  // The first process starts Redis; the others join it with the same URL (and so the same key prefix).
  const first = await sealgateFor(context, sinks, 'redis', { leg, label: `${spec.label(context.options.processes)} #1` });
  const others: Array<{ relay: RelayUnderTest; stop: () => Promise<void> }> = [];
  try {
    for (let index = 2; index <= context.options.processes; index++) {
      others.push(await sealgateFor(context, sinks, 'redis', { leg, label: `${spec.label(context.options.processes)} #${index}`, redisUrl: first.redis!.url }));
    }
  } catch (error) {
    for (const other of others) await other.stop();
    await first.stop();
    throw error;
  }
  const relay = combineRelays([first.relay, ...others.map((other) => other.relay)], leg, spec.label(context.options.processes));
  return withRedisCpu({
    relay,
    redis: first.redis,
    stop: async () => {
      await Promise.all(others.map((other) => other.stop()));
      await first.stop();
    },
  });
}

function withRedisCpu(started: { relay: RelayUnderTest; stop: () => Promise<void>; redis?: RedisHandle }): { relay: RelayUnderTest; stop: () => Promise<void> } {
  const url = started.redis?.url;
  if (url) started.relay.storeCpuSeconds = () => redisCpuSeconds(url);
  return started;
}
