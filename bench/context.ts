import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { startRedis, type RedisHandle } from '../test/support/redis-server';
import type { MxTlsBehaviour } from '../test/support/world';
import { startSealgate, type RelayUnderTest, type SealgateOptions } from './relays';
import type { SinkWorld } from './sink-world';

/** What every bench mode shares: the options, the cleanup list, the progress log. */

export const MODES = ['compare', 'latency', 'queued', 'large', 'durability', 'all'] as const;
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
  from: 'build' | 'source';
  profileDir?: string;
  /** Extra node flags for every Sealgate process. */
  relayNodeFlags: string[];
  out: string;
  timeLimitSeconds: number;
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
  if (backend === 'redis') {
    redis = await startRedis();
    stopRedis = context.cleanup.add('redis', () => redis!.stop());
  }
  const relay = await startSealgate({
    world: sinks.world,
    backend,
    from: context.options.from,
    nodeFlags: context.options.relayNodeFlags,
    ...(redis ? { redisUrl: redis.url } : {}),
    ...(context.options.profileDir ? { cpuProfileDir: path.join(context.options.profileDir, backend) } : {}),
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
