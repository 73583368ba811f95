/**
 * `npm run bench`: Sealgate (file store, then Redis store) beside Debian's Postfix configured as the
 * equivalent TLS-enforcing relay, under the same load, into the same loopback sink world.
 * See docs/performance.md for the method and the latest figures; `npm run bench -- --help` for options.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { postfixUnavailableReason } from '../test/support/postfix';
import type { MxTlsBehaviour } from '../test/support/world';
import { measure, type RunFigures } from './measure';
import { Cleanup, MODES, runId, sealgateFor, startLeg, type BenchOptions, type Context, type Mode } from './context';
import { BACKENDS, baselineOf, CLUSTER_SCALE_OUT, compareChecks, reusesConnections, scalingSummary, selectLegs, type Backend } from './legs';
import { buildSealgate, type RelayUnderTest } from './relays';
import { comparisonTable, machine, targetTable, type TargetCheck } from './report';
import { startSinkWorld, type SinkWorld } from './sink-world';
import { parseDesigns } from './store-designs/options';

const WARMUP_MESSAGES = 40;
import { checkDurability, runLargeMessage, runQueuedWhileSinksDown } from './targets';

export const HELP = `Usage: npm run bench -- [options]

  --mode MODE          compare (default) | latency | queued | large | durability | all | store-designs
                       (all runs every mode except store-designs)
  --short              quick check: a few hundred messages, smaller targets' loads
  --messages M         messages per run (default 2000; --short 300)
  --size S             message size, e.g. 10KB, 100KB (default 10KB)
  --connections C      concurrent submission connections (default 8)
  --domains N          destination domains (default 4)
  --mix LIST           TLS behaviours of the sinks, cycled over the domains (default tls13,tls12-gcm)
  --legs LIST          compare-mode legs, any of (default all, in this order):
                         lmdb           Sealgate (lmdb), tuned bench config, compiled build
                         default        Sealgate as the README's \`npm start\`: node bin/sealgate start,
                                        shipped config/default.yaml (admin API on, default logging, lmdb
                                        store), only ports and the sink world's DNS/MTA-STS/CA changed
                         file           Sealgate (file), the file store, tuned bench config
                         redis          Sealgate (redis), tuned bench config
                         redis-multi    several Sealgate processes on one Redis (same prefix, own
                                        listeners; the connections are spread over them)
                         redis-cluster  Sealgate on a Redis Cluster the bench starts on loopback
                                        (3 masters, 1 replica each, appendfsync always; every 250
                                        waits for the replica); Redis CPU summed over all 6 nodes
                         redis-cluster-multi
                                        several Sealgate processes on such a Redis Cluster
                         postfix-reuse  Postfix with smtp_tls_connection_reuse (tlsproxy): the baseline
                                        of every ratio and target
                         postfix        Postfix opening a new TLS connection per message
  --processes N        Sealgate processes of the redis-multi and redis-cluster-multi legs (default 2)
  --backends LIST      Sealgate stores to run: lmdb,file,redis (default all three); without --legs, lmdb
                       selects lmdb and default (the default start's store), file the file leg, redis
                       redis, redis-multi and the two redis-cluster legs; the target modes use the first
  --no-postfix         without --legs: skip both Postfix legs (no ratios)
  --from build|source  run the tuned Sealgate legs compiled (default, as in production) or from src/
                       through tsx (the default leg always runs bin/sealgate, as npm start does)
  --relay-node-flags F node flags for the tuned Sealgate legs, e.g. "--max-semi-space-size=2"
  --profile DIR        write a V8 CPU profile of each Sealgate run to DIR (--cpu-prof)
  --out FILE           JSON results (default bench/results/latest.json; store-designs.json for that mode)
  --time-limit SEC     stop everything after this long (default 1800)

store-designs mode (one process, no sockets: the store's per-message hot-path work, --messages at a time
--connections, of --size bytes):
  --designs LIST       any of file-store, redis-store, lmdb-store, lmdb, lmdb-nooverlap, journal
                       (default file-store,redis-store,lmdb-store,lmdb,journal; lmdb and journal are prototypes)
  --large-size S       one message of this size per design after the run (default 50MB; 0: none)
  --store-dir DIR      where the designs write (default .bench/store-designs; must be a disk, not tmpfs)
`;

function parseSizeArg(value: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(b|kb|k|mb|m)?$/i.exec(value.trim());
  if (!match) throw new Error(`--size: expected e.g. 10KB, got ${value}`);
  const unit = { b: 1, k: 1024, kb: 1024, m: 1024 ** 2, mb: 1024 ** 2 }[(match[2] ?? 'b').toLowerCase() as 'b'];
  return Math.round(Number(match[1]) * unit);
}

function positive(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const number = Number(value);
  if (!Number.isInteger(number) || number <= 0) throw new Error(`--${name}: expected a positive integer, got ${value}`);
  return number;
}

export function parseOptions(argv: string[]): BenchOptions | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      mode: { type: 'string', default: 'compare' },
      short: { type: 'boolean', default: false },
      messages: { type: 'string' },
      size: { type: 'string', default: '10KB' },
      connections: { type: 'string' },
      domains: { type: 'string' },
      mix: { type: 'string', default: 'tls13,tls12-gcm' },
      backends: { type: 'string', default: 'lmdb,file,redis' },
      'no-postfix': { type: 'boolean', default: false },
      legs: { type: 'string' },
      processes: { type: 'string' },
      from: { type: 'string', default: 'build' },
      profile: { type: 'string' },
      'relay-node-flags': { type: 'string', default: '' },
      out: { type: 'string' },
      'time-limit': { type: 'string' },
      designs: { type: 'string' },
      'large-size': { type: 'string', default: '50MB' },
      'store-dir': { type: 'string', default: path.join(__dirname, '..', '.bench', 'store-designs') },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) return undefined;
  if (!MODES.includes(values.mode as Mode)) throw new Error(`--mode: one of ${MODES.join(', ')}`);
  const backends = values.backends.split(',').map((b) => b.trim());
  if (backends.some((b) => !(BACKENDS as readonly string[]).includes(b))) throw new Error(`--backends: one or more of ${BACKENDS.join(', ')}`);
  if (values.from !== 'build' && values.from !== 'source') throw new Error('--from: build or source');
  const legs = selectLegs({ ...(values.legs !== undefined ? { legs: values.legs } : {}), backends: backends as Backend[], postfix: !values['no-postfix'] });
  const processes = positive('processes', values.processes, 2);
  if (processes < 2) throw new Error('--processes: at least 2 (one process is the redis and redis-cluster legs)');
  return {
    mode: values.mode as Mode,
    short: values.short,
    messages: positive('messages', values.messages, values.short ? 300 : 2000),
    size: parseSizeArg(values.size),
    connections: positive('connections', values.connections, 8),
    domains: positive('domains', values.domains, 4),
    mix: values.mix.split(',').map((m) => m.trim() as MxTlsBehaviour),
    backends: backends as Backend[],
    // Postfix must be installed when any Postfix leg runs.
    postfix: legs.some((leg) => leg.startsWith('postfix')),
    legs,
    processes,
    from: values.from,
    ...(values.profile ? { profileDir: path.resolve(values.profile) } : {}),
    relayNodeFlags: values['relay-node-flags'].split(' ').filter(Boolean),
    // The store-designs figures never replace the relay comparison's latest.json.
    out: path.resolve(values.out ?? path.join(__dirname, 'results', values.mode === 'store-designs' ? 'store-designs.json' : 'latest.json')),
    timeLimitSeconds: positive('time-limit', values['time-limit'], 1800),
    designs: parseDesigns(values.designs),
    largeSize: values['large-size'] === '0' ? 0 : parseSizeArg(values['large-size']),
    storeDir: path.resolve(values['store-dir']),
  };
}

/** A short unmeasured load first, so both relays start the measured run warm (connections, JIT, caches). */
async function warmUp(relay: RelayUnderTest, sinks: SinkWorld, context: Context): Promise<void> {
  await measure(relay, sinks, {
    runId: `w${runId()}`,
    messages: WARMUP_MESSAGES,
    size: context.options.size,
    connections: context.options.connections,
    domains: sinks.domains,
    timeoutMs: 60_000,
    arrivalTimeoutMs: 30_000,
  });
}

export async function loadThrough(relay: RelayUnderTest, sinks: SinkWorld, context: Context, rate?: number): Promise<RunFigures> {
  const { options } = context;
  await warmUp(relay, sinks, context);
  context.log(`  ${relay.label}: ${options.messages} messages of ${options.size} bytes over ${options.connections} connections${rate ? ` at ${rate.toFixed(1)} msg/s` : ''}`);
  const figures = await measure(relay, sinks, {
    runId: runId(),
    messages: options.messages,
    size: options.size,
    connections: options.connections,
    domains: sinks.domains,
    ...(rate ? { rate } : {}),
    timeoutMs: 600_000,
    arrivalTimeoutMs: 300_000,
  });
  context.log(
    `  ${relay.label}: ${figures.endToEndPerSecond.toFixed(1)} msg/s end to end, p99 ${figures.latencyP99.toFixed(0)} ms, ${figures.arrived}/${figures.accepted} arrived` +
      (figures.submitFailures ? `, ${figures.submitFailures} submissions failed (${figures.firstError})` : ''),
  );
  return figures;
}

interface CompareResult {
  runs: RunFigures[];
  /** The leg the ratios are taken against, and the 1-vs-N-processes lines on one Redis and on a Redis Cluster. */
  baseline?: string;
  scaling?: string;
  clusterScaling?: string;
  checks: TargetCheck[];
  table: string;
}

async function compare(context: Context, sinks: SinkWorld): Promise<CompareResult> {
  const runs: RunFigures[] = [];
  for (const leg of context.options.legs) {
    const legStarted = Date.now();
    const { relay, stop } = await startLeg(context, sinks, leg);
    context.log(`  ${relay.label}: started in ${((Date.now() - legStarted) / 1000).toFixed(1)} s`);
    try {
      const figures = await loadThrough(relay, sinks, context);
      context.log(`  ${relay.label}: ${figures.sinkConnections} connections to sinks for ${figures.accepted} messages, ${figures.cpuMsPerMessage.toFixed(2)} CPU-ms per message`);
      if (leg === 'postfix-reuse' && !reusesConnections(figures)) context.log(`  WARNING: ${relay.label} did not reuse its connections to the sinks`);
      runs.push(figures);
    } finally {
      await stop();
      context.log(`  ${leg}: ${((Date.now() - legStarted) / 1000).toFixed(1)} s from start to stop`);
    }
  }
  const baseline = baselineOf(runs);
  const checks = compareChecks(runs, { size: context.options.size });
  const scaling = scalingSummary(runs);
  const clusterScaling = scalingSummary(runs, CLUSTER_SCALE_OUT);
  const notes = [
    ...(baseline && baseline.leg !== 'postfix-reuse' ? [`Ratios are against ${baseline.relay} (the reuse Postfix did not run): no throughput targets checked.`] : []),
    ...(scaling ? [scaling] : []),
    ...(clusterScaling ? [clusterScaling] : []),
  ];
  return {
    runs,
    checks,
    ...(baseline ? { baseline: baseline.leg } : {}),
    ...(scaling ? { scaling } : {}),
    ...(clusterScaling ? { clusterScaling } : {}),
    table: [comparisonTable(runs, baseline), ...notes.map((note) => `\n${note}`)].join('\n'),
  };
}

async function latencyAtHalfRate(context: Context, sinks: SinkWorld): Promise<{ max: RunFigures; paced: RunFigures; check: TargetCheck }> {
  const backend = context.options.backends[0] ?? 'lmdb';
  const { relay, stop } = await sealgateFor(context, sinks, backend);
  try {
    context.log(`  maximum rate (${relay.label})`);
    const max = await loadThrough(relay, sinks, context);
    const rate = max.endToEndPerSecond / 2;
    context.log(`  paced at half: ${rate.toFixed(1)} msg/s`);
    const paced = await loadThrough(relay, sinks, context, rate);
    const check = {
      target: `p99 submission-to-arrival < 250 ms at half max rate (${relay.label})`,
      measured: `${paced.latencyP99.toFixed(0)} ms at ${rate.toFixed(1)} msg/s`,
      pass: paced.latencyP99 < 250 && paced.arrived === paced.accepted,
    };
    return { max, paced, check };
  } finally {
    await stop();
  }
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  if (!options) {
    process.stdout.write(HELP);
    return;
  }
  const cleanup = new Cleanup();
  const context: Context = { options, cleanup, log: (line) => process.stderr.write(`${line}\n`) };
  const abort = (why: string): void => {
    process.stderr.write(`bench: ${why}; stopping everything it started\n`);
    void cleanup.all().finally(() => process.exit(2));
  };
  process.once('SIGINT', () => abort('interrupted'));
  process.once('SIGTERM', () => abort('terminated'));
  const limit = setTimeout(() => abort(`time limit of ${options.timeLimitSeconds} s reached`), options.timeLimitSeconds * 1000);
  limit.unref();

  if (options.postfix && (options.mode === 'compare' || options.mode === 'all')) {
    const reason = postfixUnavailableReason();
    if (reason) throw new Error(`Postfix comparison impossible: ${reason} (or pass --no-postfix)`);
  }
  const started = new Date();
  const results: Record<string, unknown> = { date: started.toISOString(), command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(), machine: machine(), options };
  const checks: TargetCheck[] = [];
  const sections: string[] = [];
  try {
    if (options.mode === 'store-designs') {
      context.log('store-designs: the store hot path of each design, in this process');
      // Loaded only here: the prototypes pull in lmdb's native addon, which no other mode needs.
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- a lazy require keeps lmdb unloaded for the other modes
      const { runStoreDesigns } = require('./store-designs/run-designs') as typeof import('./store-designs/run-designs');
      const result = await runStoreDesigns(
        { designs: options.designs, messages: options.messages, connections: options.connections, size: options.size, largeSize: options.largeSize, dir: options.storeDir },
        (line) => context.log(line),
      );
      results.storeDesigns = { figures: result.figures, large: result.large, fileSystem: result.fileSystem };
      sections.push(`### Store designs, per message (M=${options.messages}, S=${options.size} B, C=${options.connections}; one process, no sockets)\n\n${result.table}`);
    }
    if (options.from === 'build' && options.mode !== 'store-designs') {
      context.log('building Sealgate (tsc -> .bench/dist)');
      await buildSealgate();
    }
    const wants = (mode: Mode): boolean => options.mode === mode || options.mode === 'all';
    if (wants('compare')) {
      const sinks = await startSinkWorld(options.domains, options.mix);
      const stopWorld = cleanup.add('world', () => sinks.world.stop());
      try {
        context.log('compare: Sealgate and Postfix, same load');
        const result = await compare(context, sinks);
        results.compare = result.runs;
        if (result.baseline) results.compareBaseline = result.baseline;
        if (result.scaling) results.scaling = result.scaling;
        if (result.clusterScaling) results.clusterScaling = result.clusterScaling;
        checks.push(...result.checks);
        sections.push(`### Throughput, latency, CPU, memory (M=${options.messages}, S=${options.size} B, C=${options.connections}, ${options.domains} domains)\n\n${result.table}`);
      } finally {
        await stopWorld();
      }
    }
    if (wants('latency')) {
      const sinks = await startSinkWorld(options.domains, options.mix);
      const stopWorld = cleanup.add('world', () => sinks.world.stop());
      try {
        context.log('latency: maximum rate, then paced at half');
        const result = await latencyAtHalfRate(context, sinks);
        results.latency = { max: result.max, paced: result.paced };
        checks.push(result.check);
        sections.push(`### Latency at half of the maximum rate\n\n${comparisonTable([result.max, { ...result.paced, relay: `${result.paced.relay} paced` }])}`);
      } finally {
        await stopWorld();
      }
    }
    if (wants('queued')) {
      context.log('queued: messages held while the sinks are down');
      const result = await runQueuedWhileSinksDown(context);
      results.queued = result.figures;
      checks.push(result.check);
    }
    if (wants('large')) {
      context.log('large: one big message end to end');
      const result = await runLargeMessage(context);
      results.large = result.figures;
      checks.push(result.check);
    }
    if (wants('durability')) {
      context.log('durability: 250 only after fsync / confirmed write');
      const result = await checkDurability(context);
      results.durability = result.figures;
      checks.push(...result.checks);
    }
  } finally {
    clearTimeout(limit);
    await cleanup.all();
  }

  results.targets = checks;
  const m = results.machine as ReturnType<typeof machine>;
  const out = [
    `## Sealgate benchmark, ${started.toISOString()}`,
    '',
    `Command: \`${results.command as string}\``,
    `Machine: ${m.nproc} CPUs (${m.cpuModel}), ${m.memoryGiB} GiB, Node ${m.node}, Postfix ${m.postfix}, ${m.redis}`,
    '',
    ...sections.flatMap((section) => [section, '']),
    ...(checks.length ? ['### Targets', '', targetTable(checks), ''] : []),
  ].join('\n');
  process.stdout.write(`${out}\n`);
  mkdirSync(path.dirname(options.out), { recursive: true });
  writeFileSync(options.out, `${JSON.stringify(results, null, 2)}\n`);
  context.log(`results written to ${options.out}`);
  if (checks.some((check) => !check.pass)) process.exitCode = 1;
}

if (require.main === module) {
  main().catch((error: Error) => {
    process.stderr.write(`bench failed: ${error.stack ?? error.message}\n`);
    process.exit(2);
  });
}
