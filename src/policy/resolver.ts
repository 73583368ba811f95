import { promises as dnsPromises, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import { LRUCache } from 'lru-cache';
import type { Config } from '../config/schema';
import type { TlsaRecord } from './dane/types';

/**
 * The one DNS resolver of the relay. Every name the relay resolves (MX, TXT, the addresses of MX
 * hosts and of `mta-sts.<domain>`) goes through an instance of this, so `dns.servers` really
 * decides what the relay sees.
 *
 * Caching: A/AAAA answers are kept for their own TTL (Node reports it with `ttl: true`). Node's
 * MX and TXT answers carry no TTL, so those are kept for a fixed `recordTtl` (60 s by default):
 * short enough that a changed MX or MTA-STS id is seen soon, long enough to spare the resolver
 * during a burst of deliveries. Every TTL is capped by `maxTtl`. NXDOMAIN and NODATA are cached
 * for `negativeTtl`; temporary failures are never cached.
 */

export type DnsFailureKind = 'nxdomain' | 'nodata' | 'temporary';

export class DnsError extends Error {
  override name = 'DnsError';
  /** True for SERVFAIL, timeouts, refused queries and other failures worth retrying later. */
  readonly temporary: boolean;
  constructor(
    readonly kind: DnsFailureKind,
    readonly query: string,
    readonly code: string,
  ) {
    super(`${query}: ${describeKind(kind, code)}`);
    this.temporary = kind === 'temporary';
  }
}

function describeKind(kind: DnsFailureKind, code: string): string {
  if (kind === 'nxdomain') return 'no such domain (NXDOMAIN)';
  if (kind === 'nodata') return 'no records of that type';
  return `temporary DNS failure (${code})`;
}

export interface MxAnswer {
  exchange: string;
  priority: number;
}

/** net/tls `lookup` option: same contract as dns.lookup, answered by this resolver. */
export type LookupFunction = (
  hostname: string,
  options: { family?: number | string; all?: boolean } | number | undefined,
  callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
) => void;

export interface DnsResolver {
  /** MX records as published; throws DnsError (nxdomain, nodata or temporary). */
  resolveMx(name: string): Promise<MxAnswer[]>;
  /** TXT records, each record's character-strings joined with nothing between them. */
  resolveTxt(name: string): Promise<string[]>;
  resolve4(name: string): Promise<string[]>;
  resolve6(name: string): Promise<string[]>;
  /**
   * A then AAAA addresses of a host. NODATA for one family is fine; throws when neither family
   * gives an address (nxdomain if the name does not exist, temporary if any query failed so).
   */
  resolveAddresses(name: string, options?: { ipv6?: boolean }): Promise<string[]>;
  /** For `lookup:` in https.request / net.connect / tls.connect. */
  readonly lookup: LookupFunction;
  /**
   * True when `dns.validating` says the servers validate DNSSEC, so the AD bit of their answers is trusted
   * and DANE is on. False: every `secure` below is false.
   */
  readonly validating: boolean;
  /** MX records with the AD bit of the answer. Same errors as resolveMx. */
  resolveMxSecure(name: string): Promise<Secured<MxAnswer[]>>;
  /**
   * A then AAAA addresses with DNSSEC status (secure only when every answer used was), and the name the
   * CNAME chain, if any, ended at (RFC 7672 §2.2.2). Same errors as resolveAddresses.
   */
  resolveAddressesSecure(name: string, options?: { ipv6?: boolean }): Promise<Secured<string[]> & { canonicalName: string }>;
  /** TLSA records at `name` (e.g. `_25._tcp.mx.example.org`). nodata/nxdomain: none; temporary: SERVFAIL (bogus) or no answer. */
  resolveTlsa(name: string): Promise<Secured<TlsaRecord[]>>;
}

/** An answer and whether the validating resolver marked it authenticated (the AD bit). */
export interface Secured<T> {
  value: T;
  secure: boolean;
}

export interface ResolverOptions {
  /** TTL for MX/TXT answers, whose real TTL Node does not expose (ms). */
  recordTtl?: number;
  /** Upper bound on any cached answer (ms). */
  maxTtl?: number;
  /** How long NXDOMAIN/NODATA answers are cached (ms). */
  negativeTtl?: number;
  now?: () => number;
}

/** What Node's resolver rejects with, mapped to the three outcomes that matter to a relay. */
export function classifyDnsError(err: unknown): { kind: DnsFailureKind; code: string } {
  const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : 'EUNKNOWN';
  switch (code) {
    case 'ENOTFOUND':
      return { kind: 'nxdomain', code };
    case 'ENODATA':
      return { kind: 'nodata', code };
    default:
      // ESERVFAIL, ETIMEOUT, EREFUSED, ECONNREFUSED, EBADRESP, EFORMERR, ...: the answer is unknown.
      return { kind: 'temporary', code };
  }
}

type CacheEntry = { expiresAt: number } & ({ ok: true; value: unknown } | { ok: false; kind: 'nxdomain' | 'nodata'; code: string });

export function createResolver(config: Config['dns'], options: ResolverOptions = {}): DnsResolver {
  const recordTtl = options.recordTtl ?? 60_000;
  const maxTtl = options.maxTtl ?? 3_600_000;
  const negativeTtl = options.negativeTtl ?? 30_000;
  const resolver = new dnsPromises.Resolver({ timeout: config.timeout, tries: config.tries });
  if (config.servers.length > 0) resolver.setServers(config.servers);
  // Bounded by entry count; expiry is kept in each entry so tests can drive the clock.
  const cache = new LRUCache<string, CacheEntry>({ max: config.cacheSize });
  const now = options.now ?? Date.now;
  const inflight = new Map<string, Promise<unknown>>();

  function fromCache(key: string): CacheEntry | undefined {
    const entry = cache.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= now()) {
      cache.delete(key);
      return undefined;
    }
    return entry;
  }

  function remember(key: string, entry: CacheEntry, ttlMs: number): void {
    if (ttlMs <= 0) return;
    cache.set(key, { ...entry, expiresAt: now() + Math.min(ttlMs, maxTtl) });
  }

  async function cached<T>(type: string, name: string, query: () => Promise<{ value: T; ttlMs: number }>): Promise<T> {
    const normalized = normalizeName(name);
    const key = `${type} ${normalized}`;
    const hit = fromCache(key);
    if (hit) {
      if (hit.ok) return hit.value as T;
      throw new DnsError(hit.kind, `${type} ${normalized}`, hit.code);
    }
    // Concurrent deliveries to one domain share a single query.
    const pending = inflight.get(key);
    if (pending) return pending as Promise<T>;
    const asked = (async () => {
      try {
        const { value, ttlMs } = await query();
        remember(key, { ok: true, value, expiresAt: 0 }, ttlMs);
        return value;
      } catch (err) {
        const { kind, code } = classifyDnsError(err);
        if (kind !== 'temporary') remember(key, { ok: false, kind, code, expiresAt: 0 }, negativeTtl);
        throw new DnsError(kind, `${type} ${normalized}`, code);
      } finally {
        inflight.delete(key);
      }
    })();
    inflight.set(key, asked);
    return asked;
  }

  const resolveMx = (name: string) =>
    cached('MX', name, async () => ({ value: (await resolver.resolveMx(normalizeName(name))).map((r) => ({ exchange: r.exchange, priority: r.priority })), ttlMs: recordTtl }));
  const resolveTxt = (name: string) => cached('TXT', name, async () => ({ value: (await resolver.resolveTxt(normalizeName(name))).map((chunks) => chunks.join('')), ttlMs: recordTtl }));
  const resolve4 = (name: string) => cached('A', name, async () => addressesWithTtl(await resolver.resolve4(normalizeName(name), { ttl: true })));
  const resolve6 = (name: string) => cached('AAAA', name, async () => addressesWithTtl(await resolver.resolve6(normalizeName(name), { ttl: true })));

  async function resolveAddresses(name: string, opts: { ipv6?: boolean } = {}): Promise<string[]> {
    if (isIP(name)) return [name];
    const families: Array<() => Promise<string[]>> = [() => resolve4(name)];
    if (opts.ipv6 !== false) families.push(() => resolve6(name));
    const settled = await Promise.allSettled(families.map((query) => query()));
    const addresses = settled.flatMap((result) => (result.status === 'fulfilled' ? result.value : []));
    if (addresses.length > 0) return addresses;
    const errors = settled.flatMap((result) => (result.status === 'rejected' ? [result.reason as unknown] : []));
    const dnsErrors = errors.filter((e): e is DnsError => e instanceof DnsError);
    if (dnsErrors.length !== errors.length) throw errors[0];
    const temporary = dnsErrors.find((e) => e.temporary);
    if (temporary) throw temporary;
    const nxdomain = dnsErrors.find((e) => e.kind === 'nxdomain');
    throw nxdomain ?? new DnsError('nodata', `A/AAAA ${normalizeName(name)}`, 'ENODATA');
  }

  const lookup: LookupFunction = (hostname, lookupOptions, callback) => {
    const opts = typeof lookupOptions === 'number' ? { family: lookupOptions } : (lookupOptions ?? {});
    const family = opts.family === 'IPv4' ? 4 : opts.family === 'IPv6' ? 6 : Number(opts.family ?? 0);
    const query = family === 4 ? resolve4(hostname) : family === 6 ? resolve6(hostname) : resolveAddresses(hostname);
    const literal = isIP(hostname);
    const answer = literal ? Promise.resolve([hostname]) : query;
    answer.then(
      (addresses) => {
        const list = addresses.map((address) => ({ address, family: isIP(address) }));
        if (opts.all) callback(null, list);
        else callback(null, list[0]!.address, list[0]!.family);
      },
      (err: unknown) => {
        const error = (err instanceof Error ? err : new Error(String(err))) as NodeJS.ErrnoException;
        // net and tls expect dns.lookup's codes: ENOTFOUND for "no address", anything else is passed on.
        if (err instanceof DnsError) error.code = err.temporary ? err.code : 'ENOTFOUND';
        callback(error, opts.all ? [] : '', undefined);
      },
    );
  };

  // Without a validating resolver nothing is known to be secure, and TLSA records are never asked for.
  const resolveMxSecure = async (name: string) => ({ value: await resolveMx(name), secure: false });
  const resolveAddressesSecure = async (name: string, opts: { ipv6?: boolean } = {}) => ({ value: await resolveAddresses(name, opts), secure: false, canonicalName: normalizeName(name) });
  const resolveTlsa = (name: string): Promise<Secured<TlsaRecord[]>> => Promise.reject(new DnsError('temporary', `TLSA ${normalizeName(name)}`, 'ENOTVALIDATING'));

  return { resolveMx, resolveTxt, resolve4, resolve6, resolveAddresses, lookup, validating: false, resolveMxSecure, resolveAddressesSecure, resolveTlsa };
}

function addressesWithTtl(records: Array<{ address: string; ttl: number }>): { value: string[]; ttlMs: number } {
  const ttl = records.length > 0 ? Math.min(...records.map((r) => r.ttl)) : 0;
  return { value: records.map((r) => r.address), ttlMs: ttl * 1000 };
}

/** Lower case without the trailing dot: the form cache keys and comparisons use. */
export function normalizeName(name: string): string {
  return name.trim().replace(/\.$/, '').toLowerCase();
}
