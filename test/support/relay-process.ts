import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const SEALGATE_BIN = path.join(REPO_ROOT, 'bin', 'sealgate');

export interface RelayFixture {
  dir: string;
  configFile: string;
  queuePath: string;
  usersFile: string;
  remove(): void;
}

/** The tests' relay config: listeners on port 0 (the relay logs the ports it got), paths relative to the config file. */
export function relayTestConfig(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  // A queue override keeps the fixture's own queue folder unless it names one: the default (`../queue`) would put
  // the queue folder, audit log and evidence in the parent of the fixture's temp folder, outside it.
  const { queue, ...rest } = overrides;
  return {
    hostname: 'relay.test',
    auth: { usersFile: 'users.json' },
    listeners: [
      { name: 'submission', host: '127.0.0.1', port: 0, tls: 'starttls', auth: 'required' },
      { name: 'submissions', host: '127.0.0.1', port: 0, tls: 'implicit', auth: 'required' },
      { name: 'smarthost', host: '127.0.0.1', port: 0, tls: 'starttls', auth: 'optional', trustedNetworks: ['127.0.0.0/8'] },
    ],
    limits: { minFreeDisk: 0 },
    // The admin API defaults to port 8025: a free port keeps parallel relays from clashing.
    admin: { port: 0 },
    // The built-in portal would take every diverted recipient over within a second (claim, ack), which the
    // queue and external-portal tests must not see; the portal's own tests turn it on (with port 0).
    portal: { enabled: false, port: 0 },
    // Tests never send traffic off this machine: unless a test world supplies its DNS server, lookups
    // go to a loopback port where nothing answers (so they fail as temporary and jobs defer).
    dns: { servers: ['127.0.0.1:1'], timeout: '500ms', tries: 1 },
    ...rest,
    queue: { path: 'queue', ...(queue as Record<string, unknown> | undefined) },
  };
}

/** A temp folder with a config file (relayTestConfig with these overrides). */
export function relayFixture(overrides: Record<string, unknown> = {}): RelayFixture {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-relay-'));
  const configFile = path.join(dir, 'sealgate.yaml');
  writeFileSync(configFile, stringify(relayTestConfig(overrides)));
  return {
    dir,
    configFile,
    queuePath: path.join(dir, 'queue'),
    usersFile: path.join(dir, 'users.json'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface RelayProcess {
  child: ChildProcess;
  ports: Record<string, number>;
  /** Every JSON log line seen so far. */
  logs: Array<Record<string, unknown>>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Runs `sealgate --config FILE start` as a child process and waits until it reports its listeners. The wait is a
 * liveness bound, not a speed check: from a source checkout the start compiles src/ through tsx, which took over
 * 15 s on 2 cores with a load average of 13.
 */
export async function startRelayProcess(
  configFile: string,
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 45_000,
  /** Hears every JSON log line as it arrives, also before the relay has started (e.g. its start retries). */
  onLog?: (entry: Record<string, unknown>) => void,
): Promise<RelayProcess> {
  const child = spawn(process.execPath, [SEALGATE_BIN, '--config', configFile, 'start'], {
    env: { ...process.env, SEALGATE_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const ports = await new Promise<Record<string, number>>((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`relay did not start within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        let entry: Record<string, unknown>;
        try {
          entry = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue;
        }
        logs.push(entry);
        onLog?.(entry);
        if (entry.event === 'relay-started') {
          clearTimeout(timer);
          const listeners = entry.listeners as Array<{ name: string; port: number }>;
          resolve(Object.fromEntries(listeners.map((l) => [l.name, l.port])));
        }
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`relay exited with ${code} before starting; stderr: ${stderr}`));
    });
  });

  return {
    child,
    ports,
    logs,
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Runs one CLI command to completion (bounded) and returns its output and exit code. */
export async function runCli(args: string[], options: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}) {
  const child = spawn(process.execPath, [SEALGATE_BIN, ...args], {
    env: { ...process.env, ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.end(options.input ?? '');
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearTimeout(timer);
  return { code, stdout, stderr };
}
