import { execFile } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { GROUPS, TLS12_SUITES, TLS13_SUITES } from '../../src/policy/nist';
import { freePort } from './ports';

/**
 * Debian's Postfix as a separate, throw-away instance: its own config_directory, queue_directory
 * and data_directory under one temp folder, smtpd on one loopback address and port, no local
 * delivery. The system's default instance (/etc/postfix) is never read, started or changed.
 *
 * How it runs: `postfix -c <dir>/conf start` as root. Postfix only insists that a non-default
 * config directory be listed in the default main.cf's `alternate_config_directories` when the
 * caller is unprivileged (set-gid postdrop/postqueue); root may start any config directory, so
 * nothing outside the temp folder is touched. Postfix logs to syslog by default; `maillog_file`
 * (through postlogd) sends the log to `<dir>/maillog` instead, which is also how errors are read.
 */

const run = promisify(execFile);

const NIST_TLS12_SUITES = TLS12_SUITES.map(([openssl]) => openssl);
const NIST_TLS13_SUITES = TLS13_SUITES;
// OpenSSL group names for the config file (P-256 etc. are accepted aliases there).
const NIST_GROUPS = GROUPS;

export const POSTFIX_BIN = '/usr/sbin/postfix';

export interface PostfixOptions {
  /** Loopback address smtpd listens on. */
  host?: string;
  /** smtpd port; 0 or unset picks a free one. */
  port?: number;
  /** main.cf lines appended after the base config (a later definition of a parameter wins). */
  mainCf?: string;
  /** master.cf lines appended after the base services (e.g. a second smtpd, or -o overrides). */
  masterCf?: string;
  /** smtpd -o overrides for the listening service (e.g. `{ smtpd_tls_security_level: 'encrypt' }`). */
  smtpdOverrides?: Record<string, string>;
  /** Files written into the config directory before start (name -> content), e.g. a SASL password map or CA file. */
  files?: Record<string, string>;
  myhostname?: string;
  timeoutMs?: number;
}

export interface PostfixInstance {
  dir: string;
  configDir: string;
  queueDir: string;
  host: string;
  port: number;
  logFile: string;
  /** The instance's mail log so far ('' before the first line). */
  log(): string;
  /** Waits until the mail log matches `pattern` (bounded); returns the match. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Runs `postqueue -c <dir> -p` (as root) and returns its output. */
  queue(): Promise<string>;
  /** `postfix -c <dir> stop`, waits for the master to exit, removes the temp folder. Safe to call twice. */
  stop(): Promise<void>;
}

/** Why Postfix tests cannot run here, or undefined when they can. */
export function postfixUnavailableReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'Postfix drops privileges from root to the postfix user; run the tests as root (CI does)';
  if (!existsSync(POSTFIX_BIN)) return `${POSTFIX_BIN} not installed (.ci/run installs the Debian postfix package)`;
  return undefined;
}

const START_ATTEMPTS = 3;
const POLL_MS = 100;

export async function startPostfix(options: PostfixOptions = {}): Promise<PostfixInstance> {
  const reason = postfixUnavailableReason();
  if (reason) throw new Error(`cannot start Postfix: ${reason}`);
  let lastError: unknown;
  // A free port found by a probe can be taken before the master binds it: retry a few times.
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    const host = options.host ?? '127.0.0.1';
    const port = options.port || (await freePort(host));
    const instance = prepare(options, host, port);
    try {
      await launch(instance, options.timeoutMs ?? 20_000);
      return instance;
    } catch (error) {
      lastError = error;
      await instance.stop();
      if (options.port) break;
    }
  }
  throw lastError;
}

function prepare(options: PostfixOptions, host: string, port: number): PostfixInstance {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-postfix-'));
  // Postfix daemons run as the postfix user and must reach the queue and data folders.
  chmodSync(dir, 0o755);
  const configDir = path.join(dir, 'conf');
  const queueDir = path.join(dir, 'queue');
  const dataDir = path.join(dir, 'data');
  const logFile = path.join(dir, 'maillog');
  for (const folder of [configDir, queueDir, dataDir]) mkdirSync(folder, { mode: 0o755 });
  const { uid, gid } = postfixUser();
  chownSync(dataDir, uid, gid);

  writeFileSync(path.join(configDir, 'main.cf'), baseMainCf({ dir, queueDir, dataDir, logFile, myhostname: options.myhostname }) + (options.mainCf ?? '') + '\n');
  writeFileSync(path.join(configDir, 'master.cf'), baseMasterCf(host, port, options.smtpdOverrides ?? {}) + (options.masterCf ?? '') + '\n');
  // Secrets readable by root only (Postfix opens them before dropping privileges); the rest may be read later.
  for (const [name, content] of Object.entries(options.files ?? {})) {
    writeFileSync(path.join(configDir, name), content, { mode: /key|passwd/.test(name) ? 0o600 : 0o644 });
  }

  let stopped = false;
  const instance: PostfixInstance = {
    dir,
    configDir,
    queueDir,
    host,
    port,
    logFile,
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    waitForLog: async (pattern, timeoutMs = 20_000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const match = instance.log().match(pattern);
        if (match) return match;
        if (Date.now() > deadline) throw new Error(`Postfix log did not match ${pattern} within ${timeoutMs} ms:\n${instance.log()}`);
        await sleep(POLL_MS);
      }
    },
    queue: async () => (await run('/usr/sbin/postqueue', ['-c', configDir, '-p'])).stdout,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      const pid = masterPid(queueDir);
      if (pid !== undefined) {
        await run(POSTFIX_BIN, ['-c', configDir, 'stop']).catch(() => undefined);
        await waitForExit(pid, 10_000);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return instance;
}

/** A base main.cf: loopback only, no local delivery, logging to a file in the temp folder. */
function baseMainCf(p: { dir: string; queueDir: string; dataDir: string; logFile: string; myhostname?: string }): string {
  return [
    'compatibility_level = 3.6',
    `queue_directory = ${p.queueDir}`,
    `data_directory = ${p.dataDir}`,
    `myhostname = ${p.myhostname ?? 'postfix.sealgate.test'}`,
    'inet_interfaces = loopback-only',
    'inet_protocols = ipv4',
    // Nothing is delivered locally; every domain goes to the relayhost or the caller's transports.
    'mydestination =',
    'local_recipient_maps =',
    'local_transport = error:5.1.1 no local delivery in this instance',
    'alias_maps =',
    'alias_database =',
    'mynetworks = 127.0.0.0/8',
    'smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination',
    // Loopback test peers: no DNS for hosts in [brackets], no backoff surprises.
    'smtp_host_lookup = native',
    'minimal_backoff_time = 1s',
    'maximal_backoff_time = 5s',
    'queue_run_delay = 1s',
    `maillog_file = ${p.logFile}`,
    `maillog_file_prefixes = ${p.dir}`,
    '',
  ].join('\n');
}

/**
 * Our own master.cf rather than Debian's: Debian's runs most daemons chrooted in the queue folder,
 * which needs copies of /etc files there; a test instance runs them unchrooted (column 5 = n).
 */
function baseMasterCf(host: string, port: number, smtpdOverrides: Record<string, string>): string {
  const overrides = Object.entries(smtpdOverrides).map(([k, v]) => `  -o ${k}=${v}`);
  return [
    `${host}:${port} inet n - n - - smtpd`,
    ...overrides,
    'pickup    unix  n - n 60 1 pickup',
    'cleanup   unix  n - n -  0 cleanup',
    'qmgr      unix  n - n 300 1 qmgr',
    'tlsmgr    unix  - - n 1000? 1 tlsmgr',
    'rewrite   unix  - - n - - trivial-rewrite',
    'bounce    unix  - - n - 0 bounce',
    'defer     unix  - - n - 0 bounce',
    'trace     unix  - - n - 0 bounce',
    'verify    unix  - - n - 1 verify',
    'flush     unix  n - n 1000? 0 flush',
    'proxymap  unix  - - n - - proxymap',
    'proxywrite unix - - n - 1 proxymap',
    'smtp      unix  - - n - - smtp',
    'relay     unix  - - n - - smtp',
    'showq     unix  n - n - - showq',
    'error     unix  - - n - - error',
    'retry     unix  - - n - - error',
    'discard   unix  - - n - - discard',
    'local     unix  - n n - - local',
    'anvil     unix  - - n - 1 anvil',
    'scache    unix  - - n - 1 scache',
    'postlog   unix-dgram n - n - 1 postlogd',
    '',
  ].join('\n');
}

async function launch(instance: PostfixInstance, timeoutMs: number): Promise<void> {
  try {
    await run(POSTFIX_BIN, ['-c', instance.configDir, 'start'], { timeout: timeoutMs });
  } catch (error) {
    throw new Error(`postfix -c ${instance.configDir} start failed: ${(error as Error).message}\n${instance.log()}`, { cause: error });
  }
  // The master binds smtpd's socket itself; accepting a connection means the instance is up.
  const deadline = Date.now() + timeoutMs;
  while (!(await canConnect(instance.host, instance.port))) {
    if (Date.now() > deadline) throw new Error(`Postfix smtpd not listening on ${instance.host}:${instance.port}:\n${instance.log()}`);
    await sleep(POLL_MS);
  }
}

function postfixUser(): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postfix:'));
  const fields = line?.split(':');
  if (!fields || fields.length < 4) throw new Error('no postfix user in /etc/passwd (is the postfix package installed?)');
  return { uid: Number(fields[2]), gid: Number(fields[3]) };
}

function masterPid(queueDir: string): number | undefined {
  const file = path.join(queueDir, 'pid', 'master.pid');
  if (!existsSync(file)) return undefined;
  const pid = Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitForExit(pid: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) {
      // Only this instance's master, by the PID it wrote; its children follow it down.
      process.kill(pid, 'SIGKILL');
      return;
    }
    await sleep(POLL_MS);
  }
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.setTimeout(1000);
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export interface EquivalentRelayOptions {
  /** Recipient domain -> next hop `ip:port` (e.g. a world MX address and `world.smtpPort`). */
  transports: Record<string, string>;
  /** PEM certificate chain and key smtpd offers with STARTTLS to submitting clients. */
  cert: string;
  key: string;
}

/**
 * Postfix configured as the relay admins would otherwise pick, enforcing Sealgate's default TLS
 * policy: STARTTLS required on submission; to every next hop TLS 1.2+ with the NIST SP 800-52r2
 * suites and groups (`encrypt`: mandatory TLS, certificate not verified), else the mail stays
 * deferred. Pass the result to startPostfix (its mainCf/files may be extended by the caller).
 *
 * TLS 1.3 suites cannot be set in Postfix 3.7's main.cf (ChaCha20 would stay enabled), so the
 * Postfix daemons get an OpenSSL config through OPENSSL_CONF (import_environment) that sets
 * Ciphersuites and Groups for every SSL context.
 */
export function equivalentRelayConfig(options: EquivalentRelayOptions): Pick<PostfixOptions, 'mainCf' | 'files'> {
  const tls12 = NIST_TLS12_SUITES.join(':');
  const mainCf = [
    'relayhost =',
    'transport_maps = texthash:$config_directory/transport',
    'smtpd_tls_cert_file = $config_directory/smtpd-cert.pem',
    'smtpd_tls_key_file = $config_directory/smtpd-key.pem',
    'smtpd_tls_security_level = encrypt',
    'smtpd_tls_protocols = >=TLSv1.2',
    'smtpd_tls_mandatory_protocols = >=TLSv1.2',
    'smtpd_tls_mandatory_ciphers = high',
    'smtp_tls_security_level = encrypt',
    'smtp_tls_protocols = >=TLSv1.2',
    'smtp_tls_mandatory_protocols = >=TLSv1.2',
    'smtp_tls_mandatory_ciphers = high',
    `tls_high_cipherlist = ${tls12}`,
    'tls_eecdh_auto_curves = prime256v1 secp384r1 secp521r1',
    'import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C POSTLOG_SERVICE POSTLOG_HOSTNAME OPENSSL_CONF=$config_directory/openssl.cnf',
    '',
  ].join('\n');
  const openssl = [
    'openssl_conf = postfix_equivalent',
    '[postfix_equivalent]',
    'ssl_conf = ssl_section',
    '[ssl_section]',
    'system_default = nist_sp800_52r2',
    '[nist_sp800_52r2]',
    'MinProtocol = TLSv1.2',
    `CipherString = ${tls12}`,
    `Ciphersuites = ${NIST_TLS13_SUITES.join(':')}`,
    `Groups = ${NIST_GROUPS.join(':')}`,
    '',
  ].join('\n');
  const transport = Object.entries(options.transports)
    .map(([domain, hop]) => `${domain} smtp:[${hop.slice(0, hop.lastIndexOf(':'))}]:${hop.slice(hop.lastIndexOf(':') + 1)}`)
    .join('\n');
  return {
    mainCf,
    files: { transport: `${transport}\n`, 'smtpd-cert.pem': options.cert, 'smtpd-key.pem': options.key, 'openssl.cnf': openssl },
  };
}
