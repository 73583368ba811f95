import { getServers, promises as dnsPromises, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import type { Answer, RecordType } from 'dns-packet';
import { LRUCache } from 'lru-cache';
import { ConfigError } from '../config/load';
import { parseHostPort, validatingResolverProblem, type Config } from '../config/schema';
import type { TlsaRecord } from './dane/types';
import { createDnsWireClient, DnsWireError, type DnsWireClient } from './dns-wire';

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
 *
 * With `dns.validating` the queries go out on the DNS wire instead (./dns-wire.ts: DO bit, AD bit read,
 * TCP on truncation), so every answer carries its real TTL and whether the validating resolver proved it
 * authentic; the same cache keeps both. The same lookups, errors and caching rules apply.
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
    /** For nxdomain/nodata from a validating resolver: the denial carried the AD bit (proved, not just said). */
    readonly secure = false,
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

/** A negative entry keeps the error it answers with: every hit throws that one (building an Error costs a stack trace). */
type CacheEntry = { expiresAt: number } & ({ ok: true; value: unknown } | { ok: false; error: DnsError });

/** `dns` settings as createResolver reads them; the DNSSEC keys default to off. */
export type ResolverConfig = Omit<Config['dns'], 'validating' | 'trustRemoteValidator'> & Partial<Pick<Config['dns'], 'validating' | 'trustRemoteValidator'>>;

type Cached = <T>(type: string, name: string, query: () => Promise<{ value: T; ttlMs: number }>) => Promise<T>;

/** The answer cache both transports share: positive answers for their TTL, NXDOMAIN/NODATA for negativeTtl, failures never. */
function createAnswerCache(cacheSize: number, options: ResolverOptions): Cached {
  const maxTtl = options.maxTtl ?? 3_600_000;
  const negativeTtl = options.negativeTtl ?? 30_000;
  // Bounded by entry count; expiry is kept in each entry so tests can drive the clock.
  const cache = new LRUCache<string, CacheEntry>({ max: cacheSize });
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

  return async function cached<T>(type: string, name: string, query: () => Promise<{ value: T; ttlMs: number }>): Promise<T> {
    const normalized = normalizeName(name);
    const key = `${type} ${normalized}`;
    const hit = fromCache(key);
    if (hit) {
      if (hit.ok) return hit.value as T;
      throw hit.error;
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
        const secure = (err as { secure?: unknown })?.secure === true;
        const error = new DnsError(kind, `${type} ${normalized}`, code, secure);
        if (kind !== 'temporary') remember(key, { ok: false, error, expiresAt: 0 }, negativeTtl);
        throw error;
      } finally {
        inflight.delete(key);
      }
    })();
    inflight.set(key, asked);
    return asked;
  };
}

export function createResolver(config: ResolverConfig, options: ResolverOptions = {}): DnsResolver {
  if (config.validating === true) return createValidatingResolver(config, options);
  const recordTtl = options.recordTtl ?? 60_000;
  const resolver = new dnsPromises.Resolver({ timeout: config.timeout, tries: config.tries });
  if (config.servers.length > 0) resolver.setServers(config.servers);
  const cached = createAnswerCache(config.cacheSize, options);

  const resolveMx = (name: string) =>
    cached('MX', name, async () => ({ value: (await resolver.resolveMx(normalizeName(name))).map((r) => ({ exchange: r.exchange, priority: r.priority })), ttlMs: recordTtl }));
  const resolveTxt = (name: string) => cached('TXT', name, async () => ({ value: (await resolver.resolveTxt(normalizeName(name))).map((chunks) => chunks.join('')), ttlMs: recordTtl }));
  const resolve4 = (name: string) => cached('A', name, async () => addressesWithTtl(await resolver.resolve4(normalizeName(name), { ttl: true })));
  const resolve6 = (name: string) => cached('AAAA', name, async () => addressesWithTtl(await resolver.resolve6(normalizeName(name), { ttl: true })));
  const resolveAddresses = addressResolver(resolve4, resolve6);
  const lookup = lookupFrom(resolve4, resolve6, resolveAddresses);

  // Without a validating resolver nothing is known to be secure, and TLSA records are never asked for.
  const resolveMxSecure = async (name: string) => ({ value: await resolveMx(name), secure: false });
  const resolveAddressesSecure = async (name: string, opts: { ipv6?: boolean } = {}) => ({ value: await resolveAddresses(name, opts), secure: false, canonicalName: normalizeName(name) });
  const resolveTlsa = (name: string): Promise<Secured<TlsaRecord[]>> => Promise.reject(new DnsError('temporary', `TLSA ${normalizeName(name)}`, 'ENOTVALIDATING'));

  return { resolveMx, resolveTxt, resolve4, resolve6, resolveAddresses, lookup, validating: false, resolveMxSecure, resolveAddressesSecure, resolveTlsa };
}

/** A then AAAA: NODATA for one family is fine; the error when neither gives an address (see DnsResolver). */
function addressResolver(resolve4: (name: string) => Promise<string[]>, resolve6: (name: string) => Promise<string[]>) {
  return async function resolveAddresses(name: string, opts: { ipv6?: boolean } = {}): Promise<string[]> {
    if (isIP(name)) return [name];
    const families: Array<() => Promise<string[]>> = [() => resolve4(name)];
    if (opts.ipv6 !== false) families.push(() => resolve6(name));
    const settled = await Promise.allSettled(families.map((query) => query()));
    const addresses = settled.flatMap((result) => (result.status === 'fulfilled' ? result.value : []));
    if (addresses.length > 0) return addresses;
    throw addressError(
      name,
      settled.flatMap((result) => (result.status === 'rejected' ? [result.reason as unknown] : [])),
    );
  };
}

/** Why no family gave an address: a temporary failure first, then NXDOMAIN, else NODATA. */
function addressError(name: string, errors: unknown[]): unknown {
  const dnsErrors = errors.filter((e): e is DnsError => e instanceof DnsError);
  if (dnsErrors.length !== errors.length) return errors[0];
  const temporary = dnsErrors.find((e) => e.temporary);
  if (temporary) return temporary;
  const nxdomain = dnsErrors.find((e) => e.kind === 'nxdomain');
  return nxdomain ?? new DnsError('nodata', `A/AAAA ${normalizeName(name)}`, 'ENODATA', dnsErrors.length > 0 && dnsErrors.every((e) => e.secure));
}

function lookupFrom(resolve4: (name: string) => Promise<string[]>, resolve6: (name: string) => Promise<string[]>, resolveAddresses: (name: string) => Promise<string[]>): LookupFunction {
  return (hostname, lookupOptions, callback) => {
    const opts = typeof lookupOptions === 'number' ? { family: lookupOptions } : (lookupOptions ?? {});
    const family = opts.family === 'IPv4' ? 4 : opts.family === 'IPv6' ? 6 : Number(opts.family ?? 0);
    const literal = isIP(hostname);
    const answer = literal ? Promise.resolve([hostname]) : family === 4 ? resolve4(hostname) : family === 6 ? resolve6(hostname) : resolveAddresses(hostname);
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
}

/**
 * The resolvers a validating resolver asks: `dns.servers`, or the system's when that is empty. Throws
 * ConfigError when they may not be trusted with DNSSEC (see validatingResolverProblem): `sealgate start`
 * exits 2 on it, a reload is refused.
 */
export function validatingServers(config: Pick<Config['dns'], 'servers'> & Partial<Pick<Config['dns'], 'validating' | 'trustRemoteValidator'>>, systemServers: () => string[] = getServers): string[] {
  const servers = config.servers.length > 0 ? [...config.servers] : systemServers();
  const problem = validatingResolverProblem({ validating: config.validating === true, trustRemoteValidator: config.trustRemoteValidator === true }, servers);
  if (problem) throw new ConfigError(config.servers.length > 0 ? problem : `${problem} (dns.servers is empty, so these are the system's resolvers)`);
  if (config.validating === true && servers.length === 0) throw new ConfigError('dns.validating is true but there is no resolver to ask: list the validating resolver in dns.servers');
  return servers;
}

/**
 * Whether DANE is on and which resolvers the AD bit is taken from, for the start log; throws ConfigError as
 * validatingServers does. `trustRemoteValidator` says the admin accepted resolvers off this host.
 */
export function dnssecSummary(config: Config['dns'], systemServers: () => string[] = getServers): { dane: boolean; resolvers: string[]; systemResolvers: boolean; trustRemoteValidator: boolean } {
  const systemResolvers = config.servers.length === 0;
  const resolvers = config.validating ? validatingServers(config, systemServers) : systemResolvers ? systemServers() : [...config.servers];
  return { dane: config.validating, resolvers, systemResolvers, trustRemoteValidator: config.trustRemoteValidator };
}

/** Records of one type at the end of the CNAME chain, with the DNSSEC status and real TTL of the answer. */
interface WireAnswer<T> {
  records: T[];
  secure: boolean;
  /** The owner name of the records: the query name, or where its CNAME chain ended. */
  canonicalName: string;
}

/** Longest CNAME chain followed inside one answer; a longer one is treated as a broken answer. */
const MAX_CNAME_HOPS = 8;

/** dns.validating: the DNS wire, the AD bit read and kept with every answer. */
function createValidatingResolver(config: ResolverConfig, options: ResolverOptions): DnsResolver {
  const servers = validatingServers(config).map((server) => parseHostPort(server, 53)!);
  const wire = createDnsWireClient({ servers, timeout: config.timeout, tries: config.tries });
  const cached = createAnswerCache(config.cacheSize, options);

  const ask = <T>(type: RecordType, name: string, read: (data: unknown) => T): Promise<WireAnswer<T>> => cached(type, name, () => askWire(wire, type, normalizeName(name), read));

  const mx = (name: string) => ask('MX', name, (data) => readMx(data));
  const a = (name: string) => ask('A', name, (data) => String(data));
  const aaaa = (name: string) => ask('AAAA', name, (data) => String(data));

  const resolveMx = async (name: string) => (await mx(name)).records;
  const resolveTxt = async (name: string) => (await ask('TXT', name, readTxt)).records;
  const resolve4 = async (name: string) => (await a(name)).records;
  const resolve6 = async (name: string) => (await aaaa(name)).records;
  const resolveAddresses = addressResolver(resolve4, resolve6);
  const lookup = lookupFrom(resolve4, resolve6, resolveAddresses);

  const resolveMxSecure = async (name: string): Promise<Secured<MxAnswer[]>> => {
    const answer = await mx(name);
    return { value: answer.records, secure: answer.secure };
  };

  const resolveAddressesSecure = async (name: string, opts: { ipv6?: boolean } = {}): Promise<Secured<string[]> & { canonicalName: string }> => {
    if (isIP(name)) return { value: [name], secure: false, canonicalName: name };
    const families = [a(name)];
    if (opts.ipv6 !== false) families.push(aaaa(name));
    const settled = await Promise.allSettled(families);
    const answers = settled.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
    const errors = settled.flatMap((result) => (result.status === 'rejected' ? [result.reason as unknown] : []));
    const value = answers.flatMap((answer) => answer.records);
    if (value.length === 0) throw addressError(name, errors);
    // Secure only when every answer was: a family that failed, or whose denial was not proved, may hide addresses.
    const secure = answers.every((answer) => answer.secure) && errors.every((err) => err instanceof DnsError && !err.temporary && err.secure);
    return { value, secure, canonicalName: answers[0]!.canonicalName };
  };

  const resolveTlsa = async (name: string): Promise<Secured<TlsaRecord[]>> => {
    const answer = await ask('TLSA', name, readTlsa);
    return { value: answer.records, secure: answer.secure };
  };

  return { resolveMx, resolveTxt, resolve4, resolve6, resolveAddresses, lookup, validating: true, resolveMxSecure, resolveAddressesSecure, resolveTlsa };
}

/** A Node-style error (code ENOTFOUND / ENODATA / the wire's) that classifyDnsError maps, with the AD bit of a denial. */
function wireFailure(code: string, message: string, secure = false): Error {
  return Object.assign(new Error(message), { code, secure });
}

async function askWire<T>(wire: DnsWireClient, type: RecordType, name: string, read: (data: unknown) => T): Promise<{ value: WireAnswer<T>; ttlMs: number }> {
  let response;
  try {
    response = await wire.query(name, type);
  } catch (err) {
    throw err instanceof DnsWireError ? wireFailure(err.code, err.message) : err;
  }
  if (response.rcode === 'NXDOMAIN') throw wireFailure('ENOTFOUND', `${type} ${name}: NXDOMAIN`, response.authenticated);
  // Follow the CNAME chain the resolver put in the answer (RFC 1034 §3.6.2), then take our type at its end.
  let owner = name;
  const used: Answer[] = [];
  for (let hop = 0; ; hop++) {
    const alias = response.answers.find((answer) => answer.type === 'CNAME' && normalizeName(answer.name) === owner);
    if (!alias) break;
    if (hop >= MAX_CNAME_HOPS) throw wireFailure('EBADRESP', `${type} ${name}: CNAME chain longer than ${MAX_CNAME_HOPS}`);
    used.push(alias);
    owner = normalizeName(String((alias as { data: unknown }).data));
  }
  const matching = response.answers.filter((answer) => answer.type === type && normalizeName(answer.name) === owner);
  if (matching.length === 0) throw wireFailure('ENODATA', `${type} ${name}: no ${type} records`, response.authenticated);
  let records: T[];
  try {
    records = matching.map((answer) => read((answer as { data: unknown }).data));
  } catch (err) {
    throw wireFailure('EBADRESP', `${type} ${name}: ${(err as Error).message}`);
  }
  const ttl = Math.min(...[...used, ...matching].map((answer) => (answer as { ttl?: number }).ttl ?? 0));
  return { value: { records, secure: response.authenticated, canonicalName: owner }, ttlMs: ttl * 1000 };
}

function readMx(data: unknown): MxAnswer {
  const { preference, exchange } = data as { preference: number; exchange: string };
  // Node reports the root (a null MX, RFC 7505) as "", and so do we.
  return { exchange: exchange === '.' ? '' : exchange, priority: preference };
}

function readTxt(data: unknown): string {
  const chunks = Array.isArray(data) ? (data as unknown[]) : [data];
  // Byte for byte, as Node's resolver gives TXT strings.
  return chunks.map((chunk) => (Buffer.isBuffer(chunk) ? chunk.toString('latin1') : String(chunk))).join('');
}

function readTlsa(data: unknown): TlsaRecord {
  const { usage, selector, matchingType, certificate } = data as { usage: number; selector: number; matchingType: number; certificate: Buffer };
  if (!Buffer.isBuffer(certificate)) throw new Error('TLSA record without certificate data');
  return { usage, selector, matchingType, data: certificate.toString('hex') };
}

function addressesWithTtl(records: Array<{ address: string; ttl: number }>): { value: string[]; ttlMs: number } {
  const ttl = records.length > 0 ? Math.min(...records.map((r) => r.ttl)) : 0;
  return { value: records.map((r) => r.address), ttlMs: ttl * 1000 };
}

/** Lower case without the trailing dot: the form cache keys and comparisons use. */
export function normalizeName(name: string): string {
  return name.trim().replace(/\.$/, '').toLowerCase();
}
