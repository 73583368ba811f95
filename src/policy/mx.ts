import { DnsError, normalizeName, type DnsResolver, type MxAnswer, type Secured } from './resolver';

/** One MX host in delivery order. */
export interface MxHost {
  host: string;
  preference: number;
  /** True for the implicit MX (the domain itself, RFC 5321 §5.1). */
  implicit: boolean;
}

export type MxLookup =
  | { kind: 'hosts'; hosts: MxHost[] }
  /** RFC 7505: the domain accepts no mail. */
  | { kind: 'null-mx' }
  | { kind: 'nxdomain'; error: string }
  /** The domain has neither MX nor an address to use as implicit MX. */
  | { kind: 'no-hosts'; error: string }
  | { kind: 'temporary'; error: string };

/** Sorts by preference, lowest first, and shuffles hosts of equal preference (RFC 5321 §5.1). */
export function orderMx(records: readonly MxAnswer[], random: () => number = Math.random): MxHost[] {
  const keyed = records.map((record) => ({
    host: normalizeName(record.exchange),
    preference: record.priority,
    implicit: false,
    tiebreak: random(),
  }));
  keyed.sort((a, b) => a.preference - b.preference || a.tiebreak - b.tiebreak);
  // Each name once, at its best preference.
  const seen = new Set<string>();
  return keyed.filter((entry) => !seen.has(entry.host) && seen.add(entry.host)).map(({ host, preference, implicit }) => ({ host, preference, implicit }));
}

/** A null MX is a record whose exchange is the root (Node reports "" for "."). */
function isNullExchange(record: MxAnswer): boolean {
  return normalizeName(record.exchange) === '';
}

/**
 * The MX hosts of a domain. Null MX when every record is the root (a "." among real MX hosts is a
 * publishing error and is skipped). No MX records (NODATA) means the implicit MX, but only when
 * the domain has an address; a temporary failure never falls back to the implicit MX.
 */
export async function lookupMx(resolver: Pick<DnsResolver, 'resolveMx' | 'resolveAddresses'>, rawDomain: string, options: { random?: () => number; ipv6?: boolean } = {}): Promise<MxLookup> {
  const found = await lookupMxWith(
    {
      mx: async (name) => ({ value: await resolver.resolveMx(name), secure: false }),
      addresses: async (name, ipv6) => ({ value: await resolver.resolveAddresses(name, { ipv6 }), secure: false }),
    },
    rawDomain,
    options,
  );
  if (found.kind !== 'hosts') return found;
  return { kind: 'hosts', hosts: found.hosts };
}

/**
 * lookupMx through a validating resolver: the same answers, plus whether the MX RRset (or, for the implicit MX,
 * the domain's address answer) was DNSSEC-secure, which DANE needs (RFC 7672 §2.2.1).
 */
export async function lookupMxSecure(
  resolver: Pick<DnsResolver, 'resolveMxSecure' | 'resolveAddressesSecure'>,
  rawDomain: string,
  options: { random?: () => number; ipv6?: boolean } = {},
): Promise<Exclude<MxLookup, { kind: 'hosts' }> | { kind: 'hosts'; hosts: MxHost[]; secure: boolean }> {
  return lookupMxWith({ mx: (name) => resolver.resolveMxSecure(name), addresses: (name, ipv6) => resolver.resolveAddressesSecure(name, { ipv6 }) }, rawDomain, options);
}

interface MxQueries {
  mx(name: string): Promise<Secured<MxAnswer[]>>;
  addresses(name: string, ipv6: boolean | undefined): Promise<Secured<string[]>>;
}

async function lookupMxWith(
  queries: MxQueries,
  rawDomain: string,
  options: { random?: () => number; ipv6?: boolean },
): Promise<Exclude<MxLookup, { kind: 'hosts' }> | { kind: 'hosts'; hosts: MxHost[]; secure: boolean }> {
  const domain = normalizeName(rawDomain);
  let answer: Secured<MxAnswer[]>;
  try {
    answer = await queries.mx(domain);
  } catch (err) {
    if (!(err instanceof DnsError)) throw err;
    if (err.kind === 'temporary') return { kind: 'temporary', error: err.message };
    if (err.kind === 'nxdomain') return { kind: 'nxdomain', error: err.message };
    return implicitMx(queries, domain, options.ipv6);
  }
  const records = answer.value;
  if (records.length > 0 && records.every(isNullExchange)) return { kind: 'null-mx' };
  const real = records.filter((record) => !isNullExchange(record));
  if (real.length === 0) return implicitMx(queries, domain, options.ipv6);
  return { kind: 'hosts', hosts: orderMx(real, options.random), secure: answer.secure };
}

async function implicitMx(queries: MxQueries, domain: string, ipv6: boolean | undefined): Promise<Exclude<MxLookup, { kind: 'hosts' }> | { kind: 'hosts'; hosts: MxHost[]; secure: boolean }> {
  try {
    const { secure } = await queries.addresses(domain, ipv6);
    return { kind: 'hosts', hosts: [{ host: domain, preference: 0, implicit: true }], secure };
  } catch (err) {
    if (!(err instanceof DnsError)) throw err;
    if (err.kind === 'temporary') return { kind: 'temporary', error: err.message };
    if (err.kind === 'nxdomain') return { kind: 'nxdomain', error: err.message };
    return { kind: 'no-hosts', error: `${domain} has no MX records and no address records` };
  }
}

/** An MX host with the addresses to try, or why it has none. */
export interface ResolvedHost extends MxHost {
  addresses: string[];
  /** Through a validating resolver only: whether every address answer was DNSSEC-secure, and where a CNAME chain ended. */
  secure?: boolean;
  canonicalName?: string;
  /** Set when the host's addresses could not be resolved. */
  error?: { temporary: boolean; message: string };
}

/**
 * Resolves the addresses of the MX hosts in order, honouring the caps: at most `maxHosts` hosts,
 * at most `maxAddresses` addresses in total (the last hosts get what is left).
 */
export async function resolveMxAddresses(
  resolver: Pick<DnsResolver, 'resolveAddresses'> & Partial<Pick<DnsResolver, 'resolveAddressesSecure'>>,
  hosts: readonly MxHost[],
  limits: { maxHosts: number; maxAddresses: number; ipv6: boolean; secure?: boolean },
): Promise<ResolvedHost[]> {
  const chosen = hosts.slice(0, limits.maxHosts);
  const secure = limits.secure === true && resolver.resolveAddressesSecure !== undefined;
  const answers = await Promise.all(
    chosen.map(async (host): Promise<ResolvedHost> => {
      try {
        if (secure) {
          const answer = await resolver.resolveAddressesSecure!(host.host, { ipv6: limits.ipv6 });
          return { ...host, addresses: answer.value, secure: answer.secure, canonicalName: normalizeName(answer.canonicalName) };
        }
        return { ...host, addresses: await resolver.resolveAddresses(host.host, { ipv6: limits.ipv6 }) };
      } catch (err) {
        if (!(err instanceof DnsError)) throw err;
        return { ...host, addresses: [], error: { temporary: err.temporary, message: err.message } };
      }
    }),
  );
  let budget = limits.maxAddresses;
  return answers.map((host) => {
    const addresses = host.addresses.slice(0, Math.max(0, budget));
    budget -= addresses.length;
    return { ...host, addresses };
  });
}
