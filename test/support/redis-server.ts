import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { Redis } from 'ioredis';
import { generate } from 'selfsigned';
import { freePort } from './ports';

export interface RedisHandle {
  url: string;
  /** A key prefix unique to this handle; stop() removes its keys on a shared server. */
  prefix: string;
  /** True when SEALGATE_TEST_REDIS_URL points at a server these helpers did not start. */
  external: boolean;
  /** Stops the server (same port and data folder kept); only for a server started here. */
  pause(): Promise<void>;
  /** Starts it again after pause(), on the same port with the same data. */
  resume(): Promise<void>;
  /** Kills the server with SIGKILL (no shutdown, no final save) and waits for it to be gone; resume() starts it again. */
  kill9(): Promise<void>;
  stop(): Promise<void>;
}

const REDIS_BINARY = process.env.SEALGATE_TEST_REDIS_SERVER ?? 'redis-server';

/** One PING to a Redis on loopback: true on +PONG, false on anything else within 0.5 s. */
export function pingOnce(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (data) => {
      reply += data.toString('latin1');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

async function waitForPing(port: number, child: ChildProcess, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with code ${child.exitCode}`);
    if (await pingOnce(port)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`redis-server on port ${port} did not answer PING within ${timeoutMs} ms`);
}

function spawnRedis(port: number, dir: string): ChildProcess {
  // Persistence as production needs it, so the store's durability check passes.
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--maxmemory-policy', 'noeviction', '--daemonize', 'no'];
  return spawn(REDIS_BINARY, args, { stdio: 'ignore' });
}

async function killAndWait(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid!, 'SIGTERM');
  const timer = setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
  }, 5_000);
  await exited;
  clearTimeout(timer);
}

async function deleteKeys(url: string, prefix: string): Promise<void> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await client.connect();
    let cursor = '0';
    for (let rounds = 0; rounds < 100_000; rounds++) {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      if (keys.length > 0) await client.del(...keys);
      cursor = next;
      if (cursor === '0') break;
    }
  } finally {
    client.disconnect();
  }
}

/** A Redis for one test file: SEALGATE_TEST_REDIS_URL when set, else a private redis-server on a free loopback port. */
export async function startRedis(options: { prefix?: string } = {}): Promise<RedisHandle> {
  const prefix = options.prefix ?? `sgtest-${process.pid}-${randomBytes(4).toString('hex')}`;
  const externalUrl = process.env.SEALGATE_TEST_REDIS_URL;
  if (externalUrl) {
    const unsupported = async () => {
      throw new Error('pause/resume need a redis-server started by the tests (unset SEALGATE_TEST_REDIS_URL)');
    };
    return { url: externalUrl, prefix, external: true, pause: unsupported, resume: unsupported, kill9: unsupported, stop: () => deleteKeys(externalUrl, prefix) };
  }

  const dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-redis-'));
  let port = 0;
  let child: ChildProcess | undefined;
  let lastError: unknown;
  for (let attempt = 0; attempt < 3 && !child; attempt++) {
    port = await freePort();
    const candidate = spawnRedis(port, dir);
    try {
      await waitForPing(port, candidate);
      child = candidate;
    } catch (error) {
      lastError = error;
      await killAndWait(candidate).catch(() => undefined);
    }
  }
  if (!child) {
    rmSync(dir, { recursive: true, force: true });
    throw lastError instanceof Error ? lastError : new Error('could not start redis-server');
  }
  let running: ChildProcess | undefined = child;
  return {
    url: `redis://127.0.0.1:${port}`,
    prefix,
    external: false,
    async pause() {
      if (running) await killAndWait(running);
      running = undefined;
    },
    async kill9() {
      const victim = running;
      running = undefined;
      if (!victim || victim.exitCode !== null || victim.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => victim.once('exit', () => resolve()));
      process.kill(victim.pid!, 'SIGKILL');
      await exited;
    },
    async resume() {
      if (running) return;
      const next = spawnRedis(port, dir);
      await waitForPing(port, next);
      running = next;
    },
    async stop() {
      if (running) await killAndWait(running);
      running = undefined;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface TlsRedisHandle {
  /** `rediss://127.0.0.1:PORT` (no credentials). */
  url: string;
  port: number;
  /** The server's self-signed certificate (PEM), to be trusted as the CA; it names `servername` only, not 127.0.0.1. */
  ca: string;
  servername: string;
  stop(): Promise<void>;
}

/**
 * A private redis-server on a free loopback port that speaks TLS only (no plaintext port), with a password for the
 * default user (`requirepass`) and, when given, one ACL user. Its certificate names `servername` and not the IP
 * address, so a client must be told the server name (queue.redis.tls.servername) to verify it.
 */
export async function startTlsRedis(options: { password: string; user?: { name: string; password: string }; servername?: string }): Promise<TlsRedisHandle> {
  const servername = options.servername ?? 'redis.test';
  const pems = await generate([{ name: 'commonName', value: servername }], {
    keyType: 'ec',
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: true },
      { name: 'subjectAltName', altNames: [{ type: 2, value: servername }] },
    ],
  });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-redis-tls-'));
  writeFileSync(path.join(dir, 'cert.pem'), pems.cert);
  writeFileSync(path.join(dir, 'key.pem'), pems.private, { mode: 0o600 });
  const port = await freePort();
  const args = ['--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--tls-cert-file', path.join(dir, 'cert.pem'), '--tls-key-file', path.join(dir, 'key.pem')];
  args.push('--tls-ca-cert-file', path.join(dir, 'cert.pem'), '--tls-auth-clients', 'no', '--requirepass', options.password);
  if (options.user) args.push('--user', options.user.name, 'on', `>${options.user.password}`, '~*', '&*', '+@all');
  args.push('--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--maxmemory-policy', 'noeviction', '--daemonize', 'no');
  const child = spawn(REDIS_BINARY, args, { stdio: 'ignore' });
  const stop = async () => {
    await killAndWait(child);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitForTls(port, child, pems.cert, servername);
  } catch (error) {
    await stop();
    throw error;
  }
  return { url: `rediss://127.0.0.1:${port}`, port, ca: pems.cert, servername, stop };
}

async function waitForTls(port: number, child: ChildProcess, ca: string, servername: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`redis-server (TLS) exited with code ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = tls.connect({ host: '127.0.0.1', port, ca, servername });
      socket.setTimeout(500, () => {
        socket.destroy();
        resolve(false);
      });
      socket.once('secureConnect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`redis-server (TLS) on port ${port} did not accept a TLS connection within ${timeoutMs} ms`);
}
