import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { parse, stringify } from 'yaml';
import { equivalentRelayConfig, startPostfix, type PostfixInstance } from '../test/support/postfix';
import { testCa } from '../test/support/world';
import type { World, WorldRelayConfig } from '../test/support/world';
import { LEGS, type Backend, type LegId } from './legs';
import type { Endpoint } from './load';
import { processTree, readMemory, treeCpuSeconds, treeMemory, type CpuSeconds } from './proc-stats';

/** A relay under test, seen from outside: where to submit, and its CPU and memory. */
export interface RelayUnderTest {
  label: string;
  leg: LegId;
  /** Relay processes sharing the load (1, or N Sealgates on one Redis). */
  processes: number;
  host: string;
  port: number;
  /** Every listener to submit to when several processes share the load (the load generator spreads its connections). */
  endpoints?: Endpoint[];
  /** The relay's own log so far, for figures only it knows (Postfix: deliveries over a reused connection). */
  logText?: () => string;
  /** CPU seconds used so far by the store's own server (Redis; every node of a cluster, summed), which cpuSeconds does not count. */
  storeCpuSeconds?: () => Promise<number>;
  /** redis-server processes storeCpuSeconds sums over, when more than one (a cluster's nodes). */
  storeServers?: number;
  /** CPU seconds used so far (the relay's process tree), and the kernel-mode part. */
  cpuSeconds(): CpuSeconds;
  /** Current memory in bytes: RSS (summed over processes for Postfix) and PSS for process trees. */
  memory(): { rss: number; pss?: number; anon?: number; file?: number };
  /** Peak RSS in bytes as the kernel counts it (VmHWM), when the relay is one process. */
  kernelPeakRss(): number | undefined;
  stop(): Promise<void>;
}

const REPO_ROOT = path.resolve(__dirname, '..');
const BUILD_DIR = path.join(REPO_ROOT, '.bench', 'dist');
const LAUNCHER = path.join(REPO_ROOT, '.bench', 'sealgate.js');
const run = promisify(execFile);

/** Compiles src/ into .bench/dist (what production runs: plain JS, no tsx), once per bench run. */
export async function buildSealgate(): Promise<void> {
  await run(process.execPath, [path.join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json', '--outDir', BUILD_DIR], {
    cwd: REPO_ROOT,
    maxBuffer: 16 * 1024 * 1024,
  }).catch((error: Error & { stdout?: string }) => {
    // tsc emits even with type errors elsewhere in the tree; only a missing entry point is fatal.
    if (!existsSync(path.join(BUILD_DIR, 'cli', 'main.js'))) throw new Error(`build failed: ${error.stdout ?? String(error)}`);
  });
  await run(process.execPath, [path.join(REPO_ROOT, 'scripts', 'copy-web-assets.js'), BUILD_DIR], { cwd: REPO_ROOT });
  // As bin/sealgate: the young generation waits for the relay's memory.maxSemiSpace before it grows.
  writeFileSync(
    LAUNCHER,
    `'use strict';\nif (process.argv.slice(2).includes('start')) require('node:v8').setFlagsFromString('--semi-space-growth-factor=1');\nrequire('./dist/cli/main.js').main(process.argv);\n`,
  );
  // The build reads its version from the package root, two levels above dist/config: .bench/.
  copyFileSync(path.join(REPO_ROOT, 'package.json'), path.join(REPO_ROOT, '.bench', 'package.json'));
}

export interface SealgateOptions {
  world: World;
  backend: Backend;
  /** The compare-mode leg this relay serves (default: the backend's tuned leg). */
  leg?: LegId;
  /** Column label (default `Sealgate (<backend>)`). */
  label?: string;
  /**
   * Started as the README's `npm start`: `node bin/sealgate start` (the sources through tsx in a
   * checkout), the shipped config/default.yaml with only what the sink world needs changed
   * (defaultStartConfig), default logging, no extra node flags.
   */
  defaultStart?: boolean;
  redisUrl?: string;
  /** redisUrl is one seed node of a Redis Cluster: the other seeds, and the replicas each write waits for (WAIT). */
  redisCluster?: { nodes: string[]; replicas: number };
  /** From the compiled build (default) or the TypeScript sources through bin/sealgate (tsx). */
  from: 'build' | 'source';
  /** Extra config keys merged over the bench defaults (e.g. `delivery: { enabled: false }`). */
  overrides?: Record<string, unknown>;
  /** Write a V8 CPU profile of the relay to this folder when it exits. */
  cpuProfileDir?: string;
  /** Extra node flags for the relay process (e.g. --max-semi-space-size=2). */
  nodeFlags?: string[];
  /** Command prefix the relay runs under (e.g. strace); the relay's node process is its child. */
  wrapper?: string[];
  timeoutMs?: number;
}

/** The key prefix of every bench relay on Redis (relays of one leg share the queue through it); on a cluster, its hash tag. */
export function benchRedisPrefix(): string {
  return `bench${process.pid}`;
}

/**
 * Sealgate as a child process with a temp config: one STARTTLS smarthost listener on loopback
 * (trusted network, no AUTH, like Postfix's permit_mynetworks), the world's DNS, MTA-STS and CA,
 * delivery defaults otherwise. Its log goes to a file, as in production (journald), so the bench
 * process does not pay for reading it.
 */
export async function startSealgate(options: SealgateOptions): Promise<RelayUnderTest> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-bench-'));
  const worldConfig = options.world.relayConfig();
  let configFile: string;
  if (options.defaultStart) {
    // Same layout as the checkout (config/ beside queue/), so the shipped relative paths land in the temp folder.
    mkdirSync(path.join(dir, 'config'));
    configFile = path.join(dir, 'config', 'default.yaml');
    const shipped = parse(readFileSync(SHIPPED_CONFIG, 'utf8')) as Record<string, unknown>;
    writeFileSync(configFile, stringify(defaultStartConfig(shipped, worldConfig)));
  } else {
    configFile = path.join(dir, 'sealgate.yaml');
    const overrides = options.overrides ?? {};
    // A configured certificate, as in production (no generated development certificate).
    const inbound = await (await testCa()).leaf('valid', 'relay.bench.test');
    writeFileSync(path.join(dir, 'cert.pem'), inbound.cert);
    writeFileSync(path.join(dir, 'key.pem'), inbound.key, { mode: 0o600 });
    const config = {
      hostname: 'relay.bench.test',
      queue: {
        path: 'queue',
        backend: options.backend,
        ...(options.backend === 'redis'
          ? {
              redis: {
                url: options.redisUrl,
                prefix: benchRedisPrefix(),
                onWeakDurability: 'refuse',
                ...(options.redisCluster ? { cluster: { enabled: true, nodes: options.redisCluster.nodes, replicas: options.redisCluster.replicas } } : {}),
              },
            }
          : {}),
      },
      auth: { usersFile: 'users.json' },
      tls: { cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') },
      listeners: [{ name: 'smarthost', host: '127.0.0.1', port: 0, tls: 'starttls', auth: 'optional', trustedNetworks: ['127.0.0.0/8'] }],
      limits: { minFreeDisk: 0, maxMessageSize: '64MiB', maxConnectionsPerIp: 200 },
      admin: { enabled: false },
      // The portal stays on (diverted mail needs it), on a free port so several relays can run side by side.
      portal: { port: 0 },
      audit: { file: 'audit.log' },
      ...worldConfig,
      dns: { ...worldConfig.dns, timeout: '2s', tries: 1 },
      ...overrides,
    };
    writeFileSync(configFile, stringify(config));
  }
  const logFile = path.join(dir, 'sealgate.log');
  const logFd = openSync(logFile, 'w');
  const profileFlags = options.cpuProfileDir ? ['--cpu-prof', '--cpu-prof-dir', options.cpuProfileDir] : [];
  const nodeArgs = [...(options.defaultStart ? [] : (options.nodeFlags ?? [])), ...profileFlags];
  const entry = options.from === 'build' && !options.defaultStart ? LAUNCHER : path.join(REPO_ROOT, 'bin', 'sealgate');
  if (options.cpuProfileDir) mkdirSync(options.cpuProfileDir, { recursive: true });
  // BENCH_RELAY_WRAPPER (e.g. "strace -c -f -o /tmp/syscalls.txt") wraps every Sealgate run, for diagnosis.
  const wrapper = options.wrapper ?? process.env.BENCH_RELAY_WRAPPER?.split(' ').filter(Boolean);
  // `npm start` runs `node bin/sealgate start`; the config file comes through SEALGATE_CONFIG so the command stays that.
  const command = [...(wrapper ?? []), process.execPath, ...nodeArgs, entry, ...(options.defaultStart ? [] : ['--config', configFile]), 'start'];
  const env = options.defaultStart ? { ...withoutSealgateEnv(process.env), SEALGATE_CONFIG: configFile } : { ...process.env, SEALGATE_LOG_LEVEL: 'info' };
  const child: ChildProcess = spawn(command[0]!, command.slice(1), {
    env,
    stdio: ['ignore', logFd, logFd],
    cwd: options.defaultStart ? REPO_ROOT : dir,
  });
  closeSync(logFd);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const pid = child.pid!;

  // Under a wrapper the relay is the wrapper's child: signal it, and the wrapper follows it out.
  const relayPid = (): number => (wrapper ? (processTree(pid).find((stat) => stat.ppid === pid)?.pid ?? pid) : pid);
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(relayPid(), 'SIGTERM');
      const timer = setTimeout(() => child.exitCode === null && child.signalCode === null && process.kill(pid, 'SIGKILL'), 40_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    const port = await waitForListener(logFile, child, options.timeoutMs ?? (options.defaultStart ? 90_000 : 30_000));
    if (options.defaultStart) {
      const problems = defaultStartProblems(readFileSync(logFile, 'utf8'));
      if (problems.length > 0) throw new Error(`the default start did not run as shipped: ${problems.join('; ')}`);
    }
    return {
      label: options.label ?? `Sealgate (${options.backend})`,
      leg: options.leg ?? options.backend,
      processes: 1,
      host: '127.0.0.1',
      port,
      cpuSeconds: () => treeCpuSeconds(pid),
      memory: () => {
        const memory = readMemory(relayPid());
        return { rss: memory?.rss ?? 0, anon: memory?.anon ?? 0, file: memory?.file ?? 0 };
      },
      kernelPeakRss: () => readMemory(relayPid())?.hwm,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

const SHIPPED_CONFIG = path.join(REPO_ROOT, 'config', 'default.yaml');

/**
 * The shipped default config with only what the bench world needs changed: every listener's port
 * (and the admin API's and portal's) to 0, a free one, so runs never collide with another relay on
 * the machine; the world's DNS server, MX port, MTA-STS port and test CA. Everything else (admin
 * API on, log level, development certificate, limits, delivery settings, file store) stays.
 */
export function defaultStartConfig(shipped: Record<string, unknown>, world: WorldRelayConfig): Record<string, unknown> {
  const section = (key: string): Record<string, unknown> => {
    const value = shipped[key];
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
  };
  const listeners = Array.isArray(shipped.listeners) ? (shipped.listeners as Array<Record<string, unknown>>) : [];
  return {
    ...shipped,
    listeners: listeners.map((listener) => ({ ...listener, port: 0 })),
    admin: { ...section('admin'), port: 0 },
    portal: { ...section('portal'), port: 0 },
    dns: { ...section('dns'), ...world.dns },
    outbound: { ...section('outbound'), ...world.outbound },
    mtaSts: { ...section('mtaSts'), ...world.mtaSts },
  };
}

/** What the default start's log must show, as `npm start` would: the default (lmdb) store and the admin API listening. */
export function defaultStartProblems(log: string): string[] {
  const events = log
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => {
      try {
        return JSON.parse(line) as { event?: string; backend?: string };
      } catch {
        return {};
      }
    });
  const problems: string[] = [];
  const started = events.find((entry) => entry.event === 'relay-started');
  if (started?.backend !== LEGS.default.kind) problems.push(`store ${started?.backend ?? 'unknown'}, not ${LEGS.default.kind}`);
  if (!events.some((entry) => entry.event === 'admin-started')) problems.push('no admin API listening');
  return problems;
}

function withoutSealgateEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([key]) => !key.startsWith('SEALGATE_')));
}

/**
 * Several Sealgate processes seen as one relay: the load is spread over their listeners, CPU and
 * memory are summed (peak RSS is the highest sampled sum, as for Postfix).
 */
export function combineRelays(relays: RelayUnderTest[], leg: LegId, label: string): RelayUnderTest {
  const first = relays[0];
  if (!first) throw new Error('combineRelays: no relay');
  return {
    label,
    leg,
    processes: relays.reduce((sum, relay) => sum + relay.processes, 0),
    host: first.host,
    port: first.port,
    endpoints: relays.map((relay) => ({ host: relay.host, port: relay.port })),
    ...(first.storeCpuSeconds ? { storeCpuSeconds: first.storeCpuSeconds } : {}),
    ...(first.storeServers !== undefined ? { storeServers: first.storeServers } : {}),
    cpuSeconds: () =>
      relays.reduce(
        (sum, relay) => {
          const cpu = relay.cpuSeconds();
          return { total: sum.total + cpu.total, system: sum.system + cpu.system };
        },
        { total: 0, system: 0 },
      ),
    memory: () => ({ rss: relays.reduce((sum, relay) => sum + relay.memory().rss, 0) }),
    kernelPeakRss: () => undefined,
    stop: async () => {
      await Promise.all(relays.map((relay) => relay.stop()));
    },
  };
}

/**
 * Deliveries Postfix's log reports as sent, and how many of them went over a reused connection
 * (`conn_use=N` in the delivery line; a delivery on a new connection has none).
 */
export function postfixDeliveries(log: string): { sent: number; reused: number } {
  let sent = 0;
  let reused = 0;
  for (const line of log.split('\n')) {
    if (!/ postfix\/smtp\[\d+\]: .* status=sent /.test(line)) continue;
    sent++;
    if (/, conn_use=\d+,/.test(line)) reused++;
  }
  return { sent, reused };
}

/** used_cpu_sys + used_cpu_user (and the same of its forked children) from Redis's `INFO cpu`, seconds. */
export function parseRedisCpu(info: string): number {
  let total = 0;
  for (const key of ['used_cpu_sys', 'used_cpu_user', 'used_cpu_sys_children', 'used_cpu_user_children']) {
    const match = new RegExp(`^${key}:([\\d.]+)`, 'm').exec(info);
    if (match) total += Number(match[1]);
  }
  return total;
}

/** CPU seconds of several Redis servers (every node of a cluster, masters and replicas) from each one's `INFO cpu`, summed. */
export function sumRedisCpu(infos: string[]): number {
  return infos.reduce((sum, info) => sum + parseRedisCpu(info), 0);
}

async function redisCpuInfo(url: string): Promise<string> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await client.connect();
    return await client.info('cpu');
  } finally {
    client.disconnect();
  }
}

/** The Redis server's CPU seconds so far, asked over a short-lived connection. */
export async function redisCpuSeconds(url: string): Promise<number> {
  return parseRedisCpu(await redisCpuInfo(url));
}

/**
 * The CPU seconds so far of every Redis server in `urls` (each node of a cluster, asked directly, not
 * through a cluster client), summed. A node that does not answer fails the figure rather than
 * leaving its share out.
 */
export async function redisServersCpuSeconds(urls: string[]): Promise<number> {
  return sumRedisCpu(await Promise.all(urls.map((url) => redisCpuInfo(url))));
}

async function waitForListener(logFile: string, child: ChildProcess, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = readFileSync(logFile, 'utf8');
    for (const line of text.split('\n')) {
      if (!line.includes('"relay-started"')) continue;
      const entry = JSON.parse(line) as { listeners: Array<{ name: string; port: number }> };
      const port = entry.listeners.find((listener) => listener.name === 'smarthost')?.port;
      if (port) return port;
    }
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`Sealgate exited before starting:\n${text.slice(-4000)}`);
    if (Date.now() > deadline) throw new Error(`Sealgate did not start within ${timeoutMs} ms:\n${text.slice(-4000)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * What turns the equivalent Postfix into the tuned one: TLS connection reuse (Postfix 3.4+), the
 * smtp client handing its TLS sessions to tlsproxy so that cached connections to a destination
 * carry on with TLS, through the scache service the base master.cf already has.
 * `smtp_connection_cache_destinations` lists every next hop so connections are cached even when
 * the queue manager sees no backlog for a destination (on-demand caching alone waits for one).
 */
export function postfixReuseConfig(nextHops: Record<string, string>): { mainCf: string; masterCf: string } {
  const destinations = Object.values(nextHops).map((hop) => `[${hop.slice(0, hop.lastIndexOf(':'))}]:${hop.slice(hop.lastIndexOf(':') + 1)}`);
  return {
    mainCf: ['smtp_tls_connection_reuse = yes', `smtp_connection_cache_destinations = ${destinations.join(' ')}`, ''].join('\n'),
    masterCf: 'tlsproxy  unix  - - n - 0 tlsproxy\n',
  };
}

/**
 * Debian's Postfix as the equivalent relay (test/support/postfix.ts: a separate instance in a temp
 * folder, never the system's default one): STARTTLS required on submission, TLS 1.2+ with the NIST
 * suites to every next hop (`encrypt`), the sinks reached through a transport map, the test CA
 * trusted. Process and concurrency limits stay at Postfix's defaults. With `reuse`, TLS connections
 * to the sinks are reused (postfixReuseConfig); without, every message opens its own.
 */
export async function startPostfixRelay(world: World, nextHops: Record<string, string>, options: { reuse: boolean }): Promise<RelayUnderTest> {
  const ca = await testCa();
  const { cert, key } = await ca.leaf('valid', 'postfix.bench.test');
  const equivalent = equivalentRelayConfig({ transports: nextHops, cert, key });
  const reuse = options.reuse ? postfixReuseConfig(nextHops) : { mainCf: '', masterCf: '' };
  const instance: PostfixInstance = await startPostfix({
    myhostname: 'postfix.bench.test',
    mainCf: `${equivalent.mainCf}smtp_tls_CAfile = $config_directory/test-ca.pem\nmessage_size_limit = 67108864\n${reuse.mainCf}`,
    masterCf: reuse.masterCf,
    files: { ...equivalent.files, 'test-ca.pem': world.caPem },
  });
  const masterPid = (): number => Number(readFileSync(path.join(instance.queueDir, 'pid', 'master.pid'), 'utf8').trim());
  const pid = masterPid();
  return {
    label: LEGS[options.reuse ? 'postfix-reuse' : 'postfix'].label(1),
    leg: options.reuse ? 'postfix-reuse' : 'postfix',
    processes: 1,
    host: instance.host,
    port: instance.port,
    cpuSeconds: () => treeCpuSeconds(pid),
    memory: () => {
      const { rss, pss } = treeMemory(pid);
      return { rss, pss };
    },
    kernelPeakRss: () => undefined,
    logText: () => instance.log(),
    stop: () => instance.stop(),
  };
}
