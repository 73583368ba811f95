import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { runLoad } from './load';
import type { TargetCheck } from './report';
import type { RelayUnderTest } from './relays';
import { runId, sealgateFor, type Context } from './context';
import { startSinkWorld, type SinkWorld } from './sink-world';

/** The memory and durability targets (bounded RSS with mail queued or a large message, 250 only after fsync; see docs/performance.md), each measured on its own Sealgate. */

const MiB = 1024 ** 2;

async function withSinks<T>(context: Context, domains: number, body: (sinks: SinkWorld) => Promise<T>): Promise<T> {
  const sinks = await startSinkWorld(domains, context.options.mix);
  const stop = context.cleanup.add('world', () => sinks.world.stop());
  try {
    return await body(sinks);
  } finally {
    await stop();
  }
}

/** Waits (bounded) until the relay's CPU use per second falls below `idleCpu`: its queue work has settled. */
async function waitUntilIdle(relay: RelayUnderTest, limitMs: number, idleCpu = 0.05): Promise<void> {
  const deadline = Date.now() + limitMs;
  let previous = relay.cpuSeconds().total;
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const current = relay.cpuSeconds().total;
    if (current - previous < idleCpu) return;
    previous = current;
  }
}

async function waitForArrivals(sinks: SinkWorld, count: number, limitMs: number): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (sinks.arrivals() < count && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
}

/** RSS with 10,000 messages of 10 KB queued while every sink is down (connections refused, jobs deferred). */
export async function runQueuedWhileSinksDown(context: Context): Promise<{ figures: Record<string, unknown>; check: TargetCheck }> {
  const messages = context.options.short ? 2000 : 10_000;
  const size = 10 * 1024;
  return withSinks(context, context.options.domains, async (sinks) => {
    await Promise.all(sinks.world.mxServers.map((server) => server.close()));
    const backend = context.options.backends[0] ?? 'lmdb';
    const { relay, stop } = await sealgateFor(context, sinks, backend);
    try {
      const load = await runLoad({ host: relay.host, port: relay.port, runId: runId(), messages, size, connections: context.options.connections, domains: sinks.domains, timeoutMs: 900_000 });
      await waitUntilIdle(relay, 120_000);
      const figures = {
        relay: relay.label,
        messages,
        size,
        accepted: load.submissions.length,
        submitFailures: load.failures.length,
        ...memoryFigures(relay.memory()),
        peakRssMiB: ((relay.kernelPeakRss() ?? 0) / MiB).toFixed(1),
      };
      context.log(`  ${messages} queued: RSS ${figures.rssMiB} MiB (anonymous ${figures.anonMiB}, file-backed ${figures.fileMiB}), peak ${figures.peakRssMiB} MiB (${figures.accepted} accepted)`);
      const peak = relay.kernelPeakRss() ?? 0;
      return {
        figures,
        check: {
          target: `${relay.label}: RSS < 150 MB with ${messages} × 10 KB queued, sinks down`,
          measured: `peak ${(peak / MiB).toFixed(1)} MiB, ${load.submissions.length}/${messages} accepted`,
          pass: peak < 150 * MiB && load.submissions.length === messages,
        },
      };
    } finally {
      await stop();
    }
  });
}

/** One 50 MiB message end to end; RSS growth = peak RSS afterwards minus RSS before, after a warm-up. */
export async function runLargeMessage(context: Context): Promise<{ figures: Record<string, unknown>; check: TargetCheck }> {
  const size = 50 * MiB;
  return withSinks(context, 1, async (sinks) => {
    const backend = context.options.backends[0] ?? 'lmdb';
    const { relay, stop } = await sealgateFor(context, sinks, backend);
    try {
      const warm = await runLoad({ host: relay.host, port: relay.port, runId: runId(), messages: 20, size: 10 * 1024, connections: 2, domains: sinks.domains, timeoutMs: 60_000 });
      await waitForArrivals(sinks, warm.submissions.length, 30_000);
      await waitUntilIdle(relay, 10_000);
      const before = relay.memory().rss;
      const peakBefore = relay.kernelPeakRss() ?? 0;
      sinks.world.clearRecords();
      const load = await runLoad({ host: relay.host, port: relay.port, runId: runId(), messages: 1, size, connections: 1, domains: sinks.domains, timeoutMs: 300_000 });
      await waitForArrivals(sinks, 1, 300_000);
      const arrived = sinks.world.received()[0];
      const peakAfter = relay.kernelPeakRss() ?? 0;
      const growth = peakAfter - before;
      const figures = {
        relay: relay.label,
        size,
        accepted: load.submissions.length,
        arrivedBytes: arrived?.raw.length ?? 0,
        rssBeforeMiB: (before / MiB).toFixed(1),
        peakBeforeMiB: (peakBefore / MiB).toFixed(1),
        peakAfterMiB: (peakAfter / MiB).toFixed(1),
        growthMiB: (growth / MiB).toFixed(1),
        after: memoryFigures(relay.memory()),
        submitSeconds: load.submissions[0] ? ((load.submissions[0].acceptedAt - load.submissions[0].startedAt) / 1000).toFixed(2) : 'n/a',
      };
      context.log(
        `  50 MiB message: RSS ${figures.rssBeforeMiB} MiB before, peak ${figures.peakAfterMiB} MiB after (growth ${figures.growthMiB} MiB; now anonymous ${figures.after.anonMiB}, file-backed ${figures.after.fileMiB}), arrived ${figures.arrivedBytes} bytes`,
      );
      return {
        figures,
        check: {
          target: `${relay.label}: a 50 MiB message relays end to end with RSS growth < 64 MB`,
          measured: `growth ${(growth / MiB).toFixed(1)} MiB, ${arrived ? 'arrived' : 'NOT arrived'}`,
          pass: growth < 64 * MiB && arrived !== undefined && arrived.raw.length >= size,
        },
      };
    } finally {
      await stop();
    }
  });
}

/** Current RSS in MiB, and its anonymous and file-backed parts where /proc tells them apart. */
function memoryFigures(memory: { rss: number; anon?: number; file?: number }): { rssMiB: string; anonMiB: string; fileMiB: string } {
  const mib = (bytes: number | undefined): string => (bytes === undefined ? 'n/a' : (bytes / MiB).toFixed(1));
  return { rssMiB: mib(memory.rss), anonMiB: mib(memory.anon), fileMiB: mib(memory.file) };
}

const FSYNC_DONE = /\b(?:fsync|fdatasync|msync)\(.*\)\s+=\s+0|<\.\.\. (?:fsync|fdatasync|msync) resumed>.*=\s+0/;
/**
 * Flushes each embedded store completes before a message's `250`: the file store syncs the body, the metadata and
 * their folders (two at least); the lmdb store flushes the body (its slab slot, or its file and folder) and then the
 * commit of its record (two at least).
 */
const LEAST_FSYNCS_BEFORE_A_250 = { file: 2, lmdb: 2 } as const;
const QUEUED_REPLY = /\bwritev?\(.*250 2\.0\.0 Ok: queued as/;

/**
 * Durability is unchanged: with the embedded stores (lmdb, file), every `250 queued` reply is written only after
 * fsyncs completed since the previous one (the relay runs under strace, one plaintext connection,
 * messages one at a time, so the replies are readable and the fsyncs between them are this
 * message's); with Redis, the relay starts with `onWeakDurability: refuse`, which it only does
 * when Redis runs appendonly with appendfsync always (every acknowledged write fsynced first).
 */
export async function checkDurability(context: Context): Promise<{ figures: Record<string, unknown>; checks: TargetCheck[] }> {
  const checks: TargetCheck[] = [];
  const figures: Record<string, unknown> = {};
  await withSinks(context, 1, async (sinks) => {
    for (const backend of (['lmdb', 'file'] as const).filter((b) => context.options.backends.includes(b))) {
      const target = `${backend} store: every 250 written after its fsyncs completed`;
      if (!existsSync('/usr/bin/strace')) {
        checks.push({ target, measured: 'strace not installed', pass: false });
        continue;
      }
      const dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-bench-strace-'));
      const trace = path.join(dir, 'trace');
      try {
        const { relay, stop } = await sealgateFor(context, sinks, backend, {
          wrapper: ['strace', '-f', '-qq', '-s', '48', '-e', 'trace=fsync,fdatasync,msync,write,writev', '-o', trace],
          overrides: {
            listeners: [{ name: 'smarthost', host: '127.0.0.1', port: 0, tls: 'starttls', auth: 'optional', trustedNetworks: ['127.0.0.0/8'], requireTls: false }],
          },
        });
        const messages = 30;
        let load;
        try {
          load = await runLoad({ host: relay.host, port: relay.port, runId: runId(), messages, size: 10 * 1024, connections: 1, domains: sinks.domains, plaintext: true, timeoutMs: 120_000 });
        } finally {
          await stop();
        }
        const fsyncsBefore: number[] = [];
        let fsyncs = 0;
        for (const line of readFileSync(trace, 'utf8').split('\n')) {
          if (FSYNC_DONE.test(line)) fsyncs++;
          else if (QUEUED_REPLY.test(line)) {
            fsyncsBefore.push(fsyncs);
            fsyncs = 0;
          }
        }
        const least = fsyncsBefore.length ? Math.min(...fsyncsBefore) : 0;
        figures[backend] = { messages, accepted: load.submissions.length, repliesSeen: fsyncsBefore.length, fewestFsyncsBeforeA250: least };
        checks.push({
          target,
          measured: `${fsyncsBefore.length}/${messages} replies traced, ≥ ${least} completed fsyncs before each`,
          pass: fsyncsBefore.length === messages && least >= LEAST_FSYNCS_BEFORE_A_250[backend],
        });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
    if (context.options.backends.includes('redis')) {
      const { relay, stop, redis } = await sealgateFor(context, sinks, 'redis');
      try {
        const client = new Redis(redis!.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
        await client.connect();
        const [, appendfsync] = (await client.config('GET', 'appendfsync')) as [string, string];
        const [, appendonly] = (await client.config('GET', 'appendonly')) as [string, string];
        client.disconnect();
        figures.redis = { appendonly, appendfsync, relayStartedWithRefuse: relay.port > 0 };
        checks.push({
          target: 'Redis store: 250 only after a write Redis fsynced (appendfsync always, relay refuses weaker)',
          measured: `appendonly ${appendonly}, appendfsync ${appendfsync}, relay started with onWeakDurability: refuse`,
          pass: appendonly === 'yes' && appendfsync === 'always',
        });
      } finally {
        await stop();
      }
    }
  });
  return { figures, checks };
}
