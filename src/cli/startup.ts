import path from 'node:path';
import { AdminConfigError } from '../admin/server';
import { ConfigError } from '../config/load';
import type { Config } from '../config/schema';
import { CertificateError } from '../inbound/dev-certificate';
import { DkimKeyError } from '../mail/dkim';
import { isStoreError, SpoolLockedError } from '../store';

/**
 * What `sealgate start` does with an error from starting the relay:
 * - `usage`: the configuration or the machine's setup is wrong (invalid config, a certificate or DKIM key file missing, a
 *   listener port taken, the spool held by another relay, Redis refusing the configured credentials); retrying
 *   cannot help: exit 2 at once.
 * - `retry`: the queue store is not there yet (Redis down, the spool folder not writable, the disk full); it may
 *   come up, so the start is tried again until queue.startupTimeout.
 * - `failure`: anything else: exit 1 at once.
 */
export type StartErrorKind = 'usage' | 'retry' | 'failure';

/** Errors of a listener's bind that only a config change (or stopping the other program) fixes. */
const BIND_CODES = new Set(['EADDRINUSE', 'EADDRNOTAVAIL', 'EACCES']);
/** File-system errors on the spool folder that an operator (or a mount coming up) may fix while we wait. */
const STORE_FS_CODES = new Set(['EACCES', 'EPERM', 'ENOTDIR', 'ENOENT', 'EROFS', 'EIO', 'ENOSPC', 'EDQUOT', 'EMFILE', 'ENFILE', 'EAGAIN', 'EBUSY']);
/** A full disk is the store's problem wherever the write was. */
const DISK_FULL_CODES = new Set(['ENOSPC', 'EDQUOT']);
/** Redis' answers to a wrong or missing password (AUTH/HELLO): the credentials in the config are wrong. */
const REDIS_AUTH_REFUSED = /\b(WRONGPASS|NOAUTH)\b/;
/** A chain of causes is followed this deep at most. */
const MAX_CAUSES = 8;

function causes(err: unknown): unknown[] {
  const chain: unknown[] = [];
  let current: unknown = err;
  while (current !== undefined && current !== null && chain.length < MAX_CAUSES) {
    chain.push(current);
    current = current instanceof Error ? current.cause : undefined;
  }
  return chain;
}

interface Errno {
  code?: unknown;
  syscall?: unknown;
  path?: unknown;
}

function errno(err: unknown): { code: string; syscall?: string; path?: string } | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const { code, syscall, path: file } = err as Errno;
  if (typeof code !== 'string') return undefined;
  return { code, ...(typeof syscall === 'string' ? { syscall } : {}), ...(typeof file === 'string' ? { path: file } : {}) };
}

/** Files the config names that the relay reads at start: a missing or unreadable one is a config error. */
function configuredFiles(config: Config): Set<string> {
  const files = [
    config.tls.cert,
    config.tls.key,
    config.portal.cert,
    config.portal.key,
    config.outbound.extraCaFile,
    config.mtaSts.extraCaFile,
    config.queue.redis.passwordFile,
    config.queue.redis.tls.ca,
  ];
  return new Set(files.filter((file): file is string => typeof file === 'string').map((file) => path.resolve(file)));
}

/** The spool folder itself, anything inside it, or a folder on the way to it (mkdir -p fails there). */
function onSpoolPath(file: string, spool: string): boolean {
  const target = path.resolve(file);
  const root = path.resolve(spool);
  return target === root || target.startsWith(root + path.sep) || root.startsWith(target + path.sep);
}

export function classifyStartError(err: unknown, config: Config): StartErrorKind {
  const chain = causes(err);
  const files = configuredFiles(config);
  for (const link of chain) {
    if (link instanceof ConfigError || link instanceof AdminConfigError || link instanceof CertificateError || link instanceof DkimKeyError || link instanceof SpoolLockedError) return 'usage';
    if (config.queue.backend === 'redis' && link instanceof Error && REDIS_AUTH_REFUSED.test(link.message)) return 'usage';
    const e = errno(link);
    if (!e) continue;
    if (BIND_CODES.has(e.code) && (e.syscall === 'listen' || e.syscall === 'bind')) return 'usage';
    if (e.path !== undefined && files.has(path.resolve(e.path)) && e.syscall !== 'write') return 'usage';
  }
  for (const link of chain) {
    if (isStoreError(link, 'unavailable')) return 'retry';
    const e = errno(link);
    if (!e) continue;
    if (DISK_FULL_CODES.has(e.code)) return 'retry';
    if ((config.queue.backend === 'file' || config.queue.backend === 'lmdb') && STORE_FS_CODES.has(e.code) && e.path !== undefined && onSpoolPath(e.path, config.queue.path)) return 'retry';
  }
  return 'failure';
}

/** First wait between start attempts; it doubles per attempt up to MAX_DELAY_MS. */
export const FIRST_DELAY_MS = 1_000;
export const MAX_DELAY_MS = 10_000;
/** Each wait is drawn from [1 - JITTER, 1] of its step, so relays restarted together do not retry in lockstep. */
const JITTER = 0.25;

/** The wait after failed attempt `attempt` (1 for the first), jittered by `random()` in [0, 1). */
export function startRetryDelay(attempt: number, random: () => number = Math.random): number {
  const step = Math.min(FIRST_DELAY_MS * 2 ** Math.max(0, attempt - 1), MAX_DELAY_MS);
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.round(step * (1 - JITTER * r));
}
