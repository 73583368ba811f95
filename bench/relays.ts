import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { equivalentRelayConfig, startPostfix, type PostfixInstance } from '../test/support/postfix';
import { testCa } from '../test/support/world';
import type { World } from '../test/support/world';
import { processTree, readMemory, treeCpuSeconds, treeMemory, type CpuSeconds } from './proc-stats';

/** A relay under test, seen from outside: where to submit, and its CPU and memory. */
export interface RelayUnderTest {
  label: string;
  host: string;
  port: number;
  /** CPU seconds used so far (the relay's process tree), and the kernel-mode part. */
  cpuSeconds(): CpuSeconds;
  /** Current memory in bytes: RSS (summed over processes for Postfix) and PSS for process trees. */
  memory(): { rss: number; pss?: number };
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
  writeFileSync(LAUNCHER, `'use strict';\nrequire('./dist/cli/main.js').main(process.argv);\n`);
}

export interface SealgateOptions {
  world: World;
  backend: 'file' | 'redis';
  redisUrl?: string;
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

/**
 * Sealgate as a child process with a temp config: one STARTTLS smarthost listener on loopback
 * (trusted network, no AUTH, like Postfix's permit_mynetworks), the world's DNS, MTA-STS and CA,
 * delivery defaults otherwise. Its log goes to a file, as in production (journald), so the bench
 * process does not pay for reading it.
 */
export async function startSealgate(options: SealgateOptions): Promise<RelayUnderTest> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-bench-'));
  const worldConfig = options.world.relayConfig();
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
      ...(options.backend === 'redis' ? { redis: { url: options.redisUrl, prefix: `bench${process.pid}`, onWeakDurability: 'refuse' } } : {}),
    },
    auth: { usersFile: 'users.json' },
    tls: { cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') },
    listeners: [{ name: 'smarthost', host: '127.0.0.1', port: 0, tls: 'starttls', auth: 'optional', trustedNetworks: ['127.0.0.0/8'] }],
    limits: { minFreeDisk: 0, maxMessageSize: '64MiB', maxConnectionsPerIp: 200 },
    admin: { enabled: false },
    audit: { file: 'audit.log' },
    ...worldConfig,
    dns: { ...worldConfig.dns, timeout: '2s', tries: 1 },
    ...overrides,
  };
  const configFile = path.join(dir, 'sealgate.yaml');
  writeFileSync(configFile, stringify(config));
  const logFile = path.join(dir, 'sealgate.log');
  const logFd = openSync(logFile, 'w');
  const nodeArgs = [...(options.nodeFlags ?? []), ...(options.cpuProfileDir ? ['--cpu-prof', '--cpu-prof-dir', options.cpuProfileDir] : [])];
  const entry = options.from === 'build' ? LAUNCHER : path.join(REPO_ROOT, 'bin', 'sealgate');
  if (options.cpuProfileDir) mkdirSync(options.cpuProfileDir, { recursive: true });
  // BENCH_RELAY_WRAPPER (e.g. "strace -c -f -o /tmp/syscalls.txt") wraps every Sealgate run, for diagnosis.
  const wrapper = options.wrapper ?? process.env.BENCH_RELAY_WRAPPER?.split(' ').filter(Boolean);
  const command = [...(wrapper ?? []), process.execPath, ...nodeArgs, entry, '--config', configFile, 'start'];
  const child: ChildProcess = spawn(command[0]!, command.slice(1), {
    env: { ...process.env, SEALGATE_LOG_LEVEL: 'info' },
    stdio: ['ignore', logFd, logFd],
    cwd: dir,
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
    const port = await waitForListener(logFile, child, options.timeoutMs ?? 30_000);
    return {
      label: `Sealgate (${options.backend})`,
      host: '127.0.0.1',
      port,
      cpuSeconds: () => treeCpuSeconds(pid),
      memory: () => ({ rss: readMemory(relayPid())?.rss ?? 0 }),
      kernelPeakRss: () => readMemory(relayPid())?.hwm,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
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
 * Debian's Postfix as the equivalent relay (test/support/postfix.ts: a separate instance in a temp
 * folder, never the system's default one): STARTTLS required on submission, TLS 1.2+ with the NIST
 * suites to every next hop (`encrypt`), the sinks reached through a transport map, the test CA
 * trusted. Process and concurrency limits stay at Postfix's defaults.
 */
export async function startPostfixRelay(world: World, nextHops: Record<string, string>): Promise<RelayUnderTest> {
  const ca = await testCa();
  const { cert, key } = await ca.leaf('valid', 'postfix.bench.test');
  const equivalent = equivalentRelayConfig({ transports: nextHops, cert, key });
  const instance: PostfixInstance = await startPostfix({
    myhostname: 'postfix.bench.test',
    mainCf: `${equivalent.mainCf}smtp_tls_CAfile = $config_directory/test-ca.pem\nmessage_size_limit = 67108864\n`,
    files: { ...equivalent.files, 'test-ca.pem': world.caPem },
  });
  const masterPid = (): number => Number(readFileSync(path.join(instance.queueDir, 'pid', 'master.pid'), 'utf8').trim());
  const pid = masterPid();
  return {
    label: 'Postfix',
    host: instance.host,
    port: instance.port,
    cpuSeconds: () => treeCpuSeconds(pid),
    memory: () => {
      const { rss, pss } = treeMemory(pid);
      return { rss, pss };
    },
    kernelPeakRss: () => undefined,
    stop: () => instance.stop(),
  };
}
