import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort } from './ports';
import { pingOnce } from './redis-server';

const REDIS_BINARY = process.env.SEALGATE_TEST_REDIS_SERVER ?? 'redis-server';
const REDIS_CLI = process.env.SEALGATE_TEST_REDIS_CLI ?? 'redis-cli';
const run = promisify(execFile);

/** One node of a test cluster. */
export interface ClusterNodeHandle {
  port: number;
  url: string;
  /** Kills the node with SIGKILL (no shutdown, nothing flushed) and waits for it to be gone. */
  kill9(): Promise<void>;
  /** Starts a killed node again on its port with its folder (nodes.conf, AOF): it rejoins the cluster. */
  restart(): Promise<void>;
  running(): boolean;
}

export interface RedisClusterHandle {
  /** The first node's URL: a seed for the store (queue.redis.url). */
  url: string;
  /** Every node's URL (seeds). */
  urls: string[];
  nodes: ClusterNodeHandle[];
  /** A key prefix unique to this handle. */
  prefix: string;
  /** The node that currently serves `key`'s slot as master (asked of a running node). */
  masterOf(key: string): Promise<ClusterNodeHandle>;
  /** The replicas of the master serving `key`'s slot. */
  replicasOf(key: string): Promise<ClusterNodeHandle[]>;
  /** Resolves once every running node says cluster_state:ok and the slot of `key` has a master with `replicas` replicas. */
  waitHealthy(key: string, replicas: number, timeoutMs?: number): Promise<void>;
  /** Stops every node (SIGTERM, then SIGKILL) by PID and removes the folders. */
  stop(): Promise<void>;
}

/** A loopback port that is free, and whose cluster bus port (port + 10000) is free too. */
async function clusterPort(taken: Set<number>): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await freePort();
    if (port + 10_000 > 65_535 || taken.has(port)) continue;
    const bus = await new Promise<boolean>((resolve) => {
      const server = net.createServer();
      server.once('error', () => resolve(false));
      server.listen(port + 10_000, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (bus) return port;
  }
  throw new Error('no free loopback port pair for a cluster node');
}

function spawnNode(port: number, dir: string, nodeTimeoutMs: number): ChildProcess {
  // Persistence as production needs it (the store refuses less), cluster mode, failover after nodeTimeoutMs.
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf'];
  args.push('--cluster-node-timeout', String(nodeTimeoutMs), '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--maxmemory-policy', 'noeviction', '--daemonize', 'no');
  return spawn(REDIS_BINARY, args, { stdio: 'ignore' });
}

async function pingable(port: number, child: ChildProcess, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`redis-server on ${port} exited with code ${child.exitCode}`);
    const ok = await pingOnce(port);
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`redis-server on port ${port} did not answer PING within ${timeoutMs} ms`);
}

async function terminate(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid!, signal);
  const timer = setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
  }, 5_000);
  await exited;
  clearTimeout(timer);
}

async function ask<T>(port: number, task: (client: Redis) => Promise<T>): Promise<T> {
  const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1_000 });
  try {
    await client.connect();
    return await task(client);
  } finally {
    client.disconnect();
  }
}

interface NodeLine {
  id: string;
  port: number;
  master: boolean;
  masterId: string;
  failed: boolean;
  slots: Array<[number, number]>;
}

/** CLUSTER NODES as seen by one node. */
function parseNodes(text: string): NodeLine[] {
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const [id = '', address = '', flags = '', masterId = '', , , , , ...slots] = line.split(' ');
      const port = Number(address.split('@')[0]!.split(':')[1]);
      return {
        id,
        port,
        master: flags.split(',').includes('master'),
        masterId,
        failed: /fail/.test(flags),
        slots: slots.filter((s) => !s.startsWith('[')).map((s) => (s.includes('-') ? (s.split('-').map(Number) as [number, number]) : ([Number(s), Number(s)] as [number, number]))),
      };
    });
}

/**
 * A private Redis Cluster on loopback ports: `masters` masters with `replicasPerMaster` replicas each, every node
 * with appendonly/appendfsync always/noeviction, failing over after `nodeTimeoutMs`. Each node runs in its own
 * temporary folder; stop() ends them by PID and removes the folders.
 */
export async function startRedisCluster(options: { masters?: number; replicasPerMaster?: number; nodeTimeoutMs?: number; prefix?: string } = {}): Promise<RedisClusterHandle> {
  const masters = options.masters ?? 3;
  const replicasPerMaster = options.replicasPerMaster ?? 1;
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 2_000;
  const prefix = options.prefix ?? `sgtest-${process.pid}-${randomBytes(4).toString('hex')}`;
  const root = mkdtempSync(path.join(os.tmpdir(), 'sealgate-redis-cluster-'));
  const taken = new Set<number>();
  const nodes: Array<ClusterNodeHandle & { child: ChildProcess | undefined; stopNode(): Promise<void> }> = [];

  const stop = async () => {
    for (const node of nodes) await node.stopNode().catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  };

  try {
    for (let i = 0; i < masters * (1 + replicasPerMaster); i++) {
      const port = await clusterPort(taken);
      taken.add(port);
      const dir = path.join(root, `n${port}`);
      mkdirSync(dir);
      const node = {
        port,
        url: `redis://127.0.0.1:${port}`,
        child: undefined as ChildProcess | undefined,
        running: () => node.child !== undefined,
        async kill9() {
          const victim = node.child;
          node.child = undefined;
          if (victim) await terminate(victim, 'SIGKILL');
        },
        async restart() {
          if (node.child) return;
          const child = spawnNode(port, dir, nodeTimeoutMs);
          node.child = child;
          await pingable(port, child);
        },
        async stopNode() {
          const child = node.child;
          node.child = undefined;
          if (child) await terminate(child, 'SIGTERM');
        },
      };
      nodes.push(node);
      await node.restart();
    }
    const addresses = nodes.map((n) => `127.0.0.1:${n.port}`);
    await run(REDIS_CLI, ['--cluster', 'create', ...addresses, '--cluster-replicas', String(replicasPerMaster), '--cluster-yes'], { timeout: 60_000 });
  } catch (error) {
    await stop();
    throw error;
  }

  const byPort = (port: number) => {
    const node = nodes.find((n) => n.port === port);
    if (!node) throw new Error(`no test cluster node on port ${port}`);
    return node;
  };
  const view = async (): Promise<{ lines: NodeLine[]; slotOf: (key: string) => Promise<number> }> => {
    for (const node of nodes.filter((n) => n.running())) {
      try {
        const text = await ask(node.port, (c) => c.cluster('NODES') as Promise<string>);
        return { lines: parseNodes(text), slotOf: (key) => ask(node.port, (c) => c.cluster('KEYSLOT', key)) };
      } catch {
        // try the next node
      }
    }
    throw new Error('no test cluster node answers');
  };
  const masterLine = async (key: string): Promise<{ master: NodeLine; lines: NodeLine[] }> => {
    const { lines, slotOf } = await view();
    const slot = await slotOf(key);
    const master = lines.find((l) => l.master && !l.failed && l.slots.some(([from, to]) => slot >= from && slot <= to));
    if (!master) throw new Error(`no master serves slot ${slot}`);
    return { master, lines };
  };

  return {
    url: nodes[0]!.url,
    urls: nodes.map((n) => n.url),
    nodes,
    prefix,
    async masterOf(key) {
      return byPort((await masterLine(key)).master.port);
    },
    async replicasOf(key) {
      const { master, lines } = await masterLine(key);
      return lines.filter((l) => l.masterId === master.id && !l.failed).map((l) => byPort(l.port));
    },
    async waitHealthy(key, replicas, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      let last = '';
      while (Date.now() < deadline) {
        try {
          const running = nodes.filter((n) => n.running());
          const states = await Promise.all(running.map((n) => ask(n.port, (c) => c.cluster('INFO'))));
          // A restarted node stays flagged failed in the others' views for a while; a client opened meanwhile does
          // not see it (CLUSTER SLOTS leaves it out), so the cluster is not healthy until every view has cleared it.
          const views = await Promise.all(running.map((n) => ask(n.port, (c) => c.cluster('NODES') as Promise<string>)));
          const runningPorts = new Set(running.map((n) => n.port));
          const flagged = views.flatMap((text) => parseNodes(text)).find((l) => l.failed && runningPorts.has(l.port));
          const { master } = await masterLine(key);
          const synced = await ask(master.port, (c) => c.info('replication'));
          const online = synced.split('\n').filter((l) => /^slave\d+:.*state=online/.test(l)).length;
          if (states.every((s) => s.includes('cluster_state:ok')) && online >= replicas && flagged === undefined) return;
          last = flagged ? `node ${flagged.port} is still flagged failed` : `master ${master.port} has ${online} replicas online`;
        } catch (error) {
          last = (error as Error).message;
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      throw new Error(`test cluster not healthy within ${timeoutMs} ms (${last})`);
    },
    stop,
  };
}
