import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { freePort } from '../ports';
import { queryDnssec } from './query';

/** Debian's paths (overridable for other layouts). */
export const NSD_BINARY = process.env.SEALGATE_TEST_NSD ?? '/usr/sbin/nsd';
export const UNBOUND_BINARY = process.env.SEALGATE_TEST_UNBOUND ?? '/usr/sbin/unbound';

const HOST = '127.0.0.1';
/** Attempts at a free port (freePort only checks TCP a moment before the daemon binds UDP and TCP). */
const PORT_ATTEMPTS = 5;
const START_TIMEOUT_MS = 10_000;

/** A daemon started in the foreground (`-d`): stopped by its own PID, never by name. */
export interface Daemon {
  name: string;
  /** 'ip:port' it answers on (UDP and TCP). */
  address: string;
  pid: number;
  /** Its log file (read it when a test fails). */
  logFile: string;
  stop(): Promise<void>;
}

export interface NsdOptions {
  dir: string;
  zone: string;
  zoneFile: string;
  /** Further zones served as they are (unsigned). */
  extraZones?: { zone: string; file: string }[];
}

/** nsd serving one zone, with every path in `dir` (no chroot, no user switch, no control socket). */
export function startNsd(options: NsdOptions): Promise<Daemon> {
  const { dir } = options;
  return startOnFreePort(
    'nsd',
    path.join(dir, 'nsd.log'),
    async (port) => {
      const configFile = path.join(dir, 'nsd.conf');
      await writeFile(
        configFile,
        [
          'server:',
          `  ip-address: ${HOST}@${port}`,
          `  port: ${port}`,
          '  username: ""',
          '  chroot: ""',
          `  zonesdir: "${dir}"`,
          '  database: ""',
          `  pidfile: "${path.join(dir, 'nsd.pid')}"`,
          `  logfile: "${path.join(dir, 'nsd.log')}"`,
          `  xfrdfile: "${path.join(dir, 'xfrd.state')}"`,
          `  zonelistfile: "${path.join(dir, 'zone.list')}"`,
          `  xfrdir: "${dir}"`,
          '  server-count: 1',
          '  do-ip6: no',
          '  verbosity: 1',
          'remote-control:',
          '  control-enable: no',
          'zone:',
          `  name: "${options.zone}"`,
          `  zonefile: "${options.zoneFile}"`,
          ...(options.extraZones ?? []).flatMap((zone) => ['zone:', `  name: "${zone.zone}"`, `  zonefile: "${zone.file}"`]),
          '',
        ].join('\n'),
      );
      return spawn(NSD_BINARY, ['-d', '-c', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    },
    (address) => queryDnssec(address, options.zone, 'SOA', 500).then((answer) => answer.rcode === 'NOERROR'),
  );
}

export interface UnboundOptions {
  dir: string;
  /** The signed zone, reached as a stub zone at `authoritative`. */
  zone: string;
  authoritative: string;
  /** The zone's DS record (presentation form): the only trust anchor. */
  trustAnchor: string;
  /** 'ip:port' that answers everything outside the signed zone (unsigned, so insecure to unbound). */
  forwardTo?: string;
  /** Unsigned zones nsd also serves (stub zones too; outside the trust anchor, so insecure). */
  unsignedZones?: string[];
}

/** A validating unbound whose only trust anchor is the test zone's DS. */
export function startUnbound(options: UnboundOptions): Promise<Daemon> {
  const { dir } = options;
  const at = (address: string): string => address.replace(/:(\d+)$/, '@$1');
  return startOnFreePort(
    'unbound',
    path.join(dir, 'unbound.log'),
    async (port) => {
      const configFile = path.join(dir, 'unbound.conf');
      await writeFile(
        configFile,
        [
          'server:',
          `  interface: ${HOST}@${port}`,
          `  port: ${port}`,
          '  interface-automatic: no',
          '  username: ""',
          '  chroot: ""',
          `  directory: "${dir}"`,
          '  pidfile: ""',
          `  logfile: "${path.join(dir, 'unbound.log')}"`,
          '  use-syslog: no',
          '  verbosity: 1',
          '  val-log-level: 2',
          '  num-threads: 1',
          '  outgoing-range: 64',
          '  num-queries-per-thread: 32',
          '  msg-cache-size: 1m',
          '  rrset-cache-size: 2m',
          '  do-ip6: no',
          // The test servers all live on loopback addresses, which unbound refuses to query by default.
          '  do-not-query-localhost: no',
          // RFC 6761 names are answered locally (NXDOMAIN) by default; the test world lives under .test.
          '  local-zone: "test." nodefault',
          `  trust-anchor: "${options.trustAnchor}"`,
          'remote-control:',
          '  control-enable: no',
          'stub-zone:',
          `  name: "${options.zone}"`,
          `  stub-addr: ${at(options.authoritative)}`,
          ...(options.unsignedZones ?? []).flatMap((zone) => ['stub-zone:', `  name: "${zone}"`, `  stub-addr: ${at(options.authoritative)}`]),
          ...(options.forwardTo ? ['forward-zone:', '  name: "."', `  forward-addr: ${at(options.forwardTo)}`] : []),
          '',
        ].join('\n'),
      );
      return spawn(UNBOUND_BINARY, ['-d', '-c', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
      // Ready once the zone's apex validates: the trust anchor, the stub and the signatures all work.
    },
    (address) => queryDnssec(address, options.zone, 'SOA', 1_000).then((answer) => answer.rcode === 'NOERROR' && answer.ad),
  );
}

/** Start on a free port, retrying with another when the daemon dies (port taken) before it answers. */
async function startOnFreePort(name: string, logFile: string, launch: (port: number) => Promise<ChildProcess>, ready: (address: string) => Promise<boolean>): Promise<Daemon> {
  let lastError: Error | undefined;
  for (let attempt = 1; attempt <= PORT_ATTEMPTS; attempt++) {
    const port = await freePort(HOST);
    const address = `${HOST}:${port}`;
    const child = await launch(port);
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      if (stderr.length < 4_000) stderr += chunk.toString();
    });
    const daemon: Daemon = { name, address, pid: child.pid ?? -1, logFile, stop: () => stopChild(child) };
    try {
      await waitReady(name, child, address, ready);
      return daemon;
    } catch (error) {
      await daemon.stop();
      lastError = new Error(`${(error as Error).message}; stderr: ${stderr.trim() || '(none)'}; log: ${logFile}`);
    }
  }
  throw lastError ?? new Error(`${name} did not start`);
}

async function waitReady(name: string, child: ChildProcess, address: string, ready: (address: string) => Promise<boolean>): Promise<void> {
  const spawnError = new Promise<never>((_resolve, reject) => child.once('error', (error) => reject(new Error(`${name}: ${error.message}`))));
  spawnError.catch(() => undefined);
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${name} exited (${child.exitCode ?? child.signalCode}) before answering on ${address}`);
    const ok = await Promise.race([ready(address).catch(() => false), spawnError]);
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${name} did not answer on ${address} within ${START_TIMEOUT_MS} ms`);
}

/** SIGTERM to this child's PID, SIGKILL after 5 s, resolved once it has exited. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }, 5_000);
  await exited;
  clearTimeout(timer);
}
