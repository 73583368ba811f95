import { isIP } from 'node:net';
import { parseRoute, type Config } from '../config/schema';
import type { MtaSts, MtaStsResult } from './mta-sts';
import { mxMatchesPolicy } from './mta-sts/match';
import { daneHostPolicy } from './dane/host';
import { DANE_TLSA_BOGUS } from './dane/match';
import type { DaneHostPolicy } from './dane/types';
import { lookupMx, lookupMxSecure, resolveMxAddresses, type MxHost, type MxLookup, type ResolvedHost } from './mx';
import { DnsError, normalizeName, type DnsResolver } from './resolver';

export type TlsLevel = 'encrypt' | 'verify' | 'portal';

/** One MX host the delivery engine may try, in order, with what its TLS session must satisfy. */
export interface Candidate {
  host: string;
  preference: number;
  /** Addresses to connect to, in order (already capped). */
  addresses: string[];
  port: number;
  /** The certificate must chain to a trusted root and match `host` (level verify, MTA-STS enforce). */
  requireValidCert: boolean;
  /** Whether `host` matches the MTA-STS policy's mx patterns; null without an enforce/testing policy. */
  stsMatch: boolean | null;
  /** SNI and certificate name to check; null when the next hop is an IP literal (a route). */
  servername: string | null;
  /** MTA-STS testing mode: record (never act on) what enforce would have refused for this host. */
  stsTesting: boolean;
  implicit: boolean;
  /** DANE (RFC 7672) for this host; null when DANE is off or does not apply. When its state is `secure-tlsa`, DANE alone authenticates the host. */
  dane: DaneHostPolicy | null;
}

export interface PlanPolicy {
  source: 'mta-sts' | 'domain-rule' | 'default';
  /** MTA-STS mode in force (null: no policy). */
  mode: 'enforce' | 'testing' | 'none' | null;
  /** MTA-STS policy id (null: no policy). */
  id: string | null;
  level: TlsLevel;
}

/** A failure MTA-STS testing mode would have caused under enforce (kept for TLS-RPT). */
export interface WouldFail {
  host: string;
  /** Short code: mx-not-in-policy, certificate-untrusted, certificate-name-mismatch, starttls-not-offered, ... */
  reason: string;
  detail?: string;
}

/** Every MX host that was considered, including those left out, for reports and evidence. */
export interface PlannedHost extends ResolvedHost {
  port: number;
  stsMatch: boolean | null;
  /** DANE (RFC 7672) for this host; null when DANE is off or does not apply. */
  dane: DaneHostPolicy | null;
  /**
   * Why this host is not a candidate (null: it is one). `address-lookup-temporary` hosts count as
   * transient: when every candidate is non-compliant but such a host exists, defer rather than divert.
   */
  excluded: string | null;
}

interface PlanBase {
  domain: string;
  policy: PlanPolicy;
  mtaSts: MtaStsResult | null;
  hosts: PlannedHost[];
}

export type DeliveryPlan =
  | (PlanBase & { kind: 'deliver'; candidates: Candidate[]; wouldFail: WouldFail[] })
  | (PlanBase & { kind: 'divert'; code: string; reason: string })
  | (PlanBase & { kind: 'defer'; code: string; reason: string })
  | (PlanBase & { kind: 'bounce'; code: string; reason: string; status: string; reply: string });

export interface Planner {
  planDelivery(domain: string): Promise<DeliveryPlan>;
  /**
   * Where a portal notice for a domain may go: the route or the MX hosts, as for any message, but
   * without the domain's level (a `portal` domain still gets its notices) or MTA-STS (a notice is
   * delivered opportunistically; see decideNoticeOutcomes). A null MX still bounces.
   */
  planOpportunistic(domain: string): Promise<DeliveryPlan>;
  /** The level and route rules for a domain, without any lookup. */
  domainRule(domain: string): { level: TlsLevel; source: 'domain-rule' | 'default'; route: { host: string; port: number } | null };
}

export interface PlannerDeps {
  config: Pick<Config, 'outbound' | 'domains'>;
  /** With `validating` (and the secure lookups), DANE is on for planDelivery; without, nothing DANE does happens. */
  resolver: Pick<DnsResolver, 'resolveMx' | 'resolveAddresses'> & Partial<Pick<DnsResolver, 'validating' | 'resolveMxSecure' | 'resolveAddressesSecure' | 'resolveTlsa'>>;
  /** null when MTA-STS is disabled. */
  mtaSts: MtaSts | null;
  random?: () => number;
}

/**
 * Decides where and how mail for one domain may go: portal rule → route or MX lookup (null MX,
 * NXDOMAIN, temporary failures) → MTA-STS → candidates with their TLS requirements. It opens no
 * SMTP connection; the delivery engine and `sealgate check` try the candidates.
 */
export function createPlanner(deps: PlannerDeps): Planner {
  const { outbound } = deps.config;
  const rules = new Map(Object.entries(deps.config.domains).map(([name, rule]) => [normalizeName(name), rule]));

  function domainRule(rawDomain: string): ReturnType<Planner['domainRule']> {
    const rule = rules.get(normalizeName(rawDomain));
    const route = rule?.route ? (parseRoute(rule.route, outbound.port) ?? null) : null;
    if (rule?.level) return { level: rule.level, source: 'domain-rule', route };
    return { level: outbound.defaultLevel, source: rule ? 'domain-rule' : 'default', route };
  }

  async function planDelivery(rawDomain: string): Promise<DeliveryPlan> {
    const domain = normalizeName(rawDomain);
    const rule = domainRule(domain);
    const basePolicy: PlanPolicy = { source: rule.source, mode: null, id: null, level: rule.level };
    const base = { domain, policy: basePolicy, mtaSts: null, hosts: [] as PlannedHost[] };

    if (rule.level === 'portal') {
      return { ...base, kind: 'divert', code: 'portal-level', reason: `domain ${domain} is set to level portal: always divert` };
    }

    if (rule.route) return planRoute(domain, rule.route, basePolicy);

    const dane = daneResolver();
    const mx = dane ? await lookupMxSecure(dane, domain, { random: deps.random, ipv6: outbound.ipv6 }) : await lookupMx(deps.resolver, domain, { random: deps.random, ipv6: outbound.ipv6 });
    if (mx.kind !== 'hosts') return noMailHosts(domain, mx, base);
    const mxSecure = 'secure' in mx && mx.secure === true;

    const sts = deps.mtaSts ? await deps.mtaSts.lookup(domain) : null;
    if (sts?.temporary) {
      return { ...base, mtaSts: sts, kind: 'defer', code: 'mta-sts-dns-temporary', reason: `MTA-STS record lookup failed and no policy is cached: ${sts.error ?? 'temporary DNS failure'}` };
    }
    const active = sts?.policy && sts.policy.mode !== 'none' ? sts.policy : null;
    const policy: PlanPolicy = {
      source: active ? 'mta-sts' : rule.source,
      mode: sts?.policy?.mode ?? null,
      id: sts?.policyId ?? null,
      level: rule.level,
    };

    const resolved = await resolveMxAddresses(deps.resolver, mx.hosts, { maxHosts: outbound.maxMxHosts, maxAddresses: outbound.maxAddresses, ipv6: outbound.ipv6, secure: dane !== null });
    const danePolicies = await Promise.all(
      resolved.map((host) =>
        dane && !host.error
          ? daneHostPolicy(dane, { host: host.host, domain, mxSecure, addressesSecure: host.secure === true, canonicalName: host.canonicalName ?? host.host })
          : Promise.resolve(null),
      ),
    );
    const hosts: PlannedHost[] = [];
    const candidates: Candidate[] = [];
    const wouldFail: WouldFail[] = [];
    for (const [index, resolvedHost] of resolved.entries()) {
      const { secure: _secure, canonicalName: _canonical, ...host } = resolvedHost;
      const hostDane = danePolicies[index] ?? null;
      // Where DANE applies, it alone governs the host: MTA-STS neither excludes it nor judges it (RFC 8461 §2).
      const daneGoverns = hostDane?.state === 'secure-tlsa';
      const stsMatch = active ? mxMatchesPolicy(host.host, active.mx) : null;
      let excluded: string | null = null;
      if (hostDane?.state === 'bogus') excluded = DANE_TLSA_BOGUS;
      else if (active?.mode === 'enforce' && !stsMatch && !daneGoverns) excluded = 'mx-not-in-policy';
      else if (host.error) excluded = host.error.temporary ? 'address-lookup-temporary' : 'no-address';
      else if (host.addresses.length === 0) excluded = 'address-cap-reached';
      if (active?.mode === 'testing' && !stsMatch && !daneGoverns) wouldFail.push({ host: host.host, reason: 'mx-not-in-policy', detail: `${host.host} matches none of ${active.mx.join(', ')}` });
      hosts.push({ ...host, port: outbound.port, stsMatch, dane: hostDane, excluded });
      if (excluded) continue;
      candidates.push({
        host: host.host,
        preference: host.preference,
        addresses: host.addresses,
        port: outbound.port,
        requireValidCert: rule.level === 'verify' || active?.mode === 'enforce',
        stsMatch,
        servername: host.host,
        stsTesting: active?.mode === 'testing' && !daneGoverns,
        implicit: host.implicit,
        dane: hostDane,
      });
    }
    const planBase = { domain, policy, mtaSts: sts, hosts };
    if (candidates.length > 0) return { ...planBase, kind: 'deliver', candidates, wouldFail };
    return noCandidates(planBase, hosts);
  }

  async function planRoute(domain: string, route: { host: string; port: number }, policy: PlanPolicy): Promise<DeliveryPlan> {
    const host: MxHost = { host: route.host, preference: 0, implicit: false };
    const literal = isIP(route.host) !== 0;
    let addresses: string[] = [];
    let error: ResolvedHost['error'];
    try {
      addresses = literal ? [route.host] : (await deps.resolver.resolveAddresses(route.host, { ipv6: outbound.ipv6 })).slice(0, outbound.maxAddresses);
    } catch (err) {
      if (!(err instanceof DnsError)) throw err;
      error = { temporary: err.temporary, message: err.message };
    }
    const planned: PlannedHost = {
      ...host,
      addresses,
      port: route.port,
      stsMatch: null,
      dane: null,
      excluded: error ? (error.temporary ? 'address-lookup-temporary' : 'no-address') : null,
      ...(error ? { error } : {}),
    };
    const base = { domain, policy, mtaSts: null, hosts: [planned] };
    if (error) return { ...base, kind: 'defer', code: error.temporary ? 'dns-temporary' : 'route-no-address', reason: `route ${route.host}: ${error.message}` };
    const candidate: Candidate = {
      ...host,
      addresses,
      port: route.port,
      requireValidCert: policy.level === 'verify',
      stsMatch: null,
      servername: literal ? null : route.host,
      stsTesting: false,
      dane: null,
    };
    return { ...base, kind: 'deliver', candidates: [candidate], wouldFail: [] };
  }

  async function planOpportunistic(rawDomain: string): Promise<DeliveryPlan> {
    const domain = normalizeName(rawDomain);
    const rule = domainRule(domain);
    const policy: PlanPolicy = { source: rule.source, mode: null, id: null, level: rule.level };
    const base = { domain, policy, mtaSts: null, hosts: [] as PlannedHost[] };
    if (rule.route) {
      const routed = await planRoute(domain, rule.route, policy);
      return routed.kind === 'deliver' ? { ...routed, candidates: routed.candidates.map((c) => ({ ...c, requireValidCert: false })) } : routed;
    }
    const mx = await lookupMx(deps.resolver, domain, { random: deps.random, ipv6: outbound.ipv6 });
    if (mx.kind !== 'hosts') return noMailHosts(domain, mx, base);
    const resolved = await resolveMxAddresses(deps.resolver, mx.hosts, { maxHosts: outbound.maxMxHosts, maxAddresses: outbound.maxAddresses, ipv6: outbound.ipv6 });
    const hosts: PlannedHost[] = [];
    const candidates: Candidate[] = [];
    for (const host of resolved) {
      const excluded = host.error ? (host.error.temporary ? 'address-lookup-temporary' : 'no-address') : host.addresses.length === 0 ? 'address-cap-reached' : null;
      hosts.push({ ...host, port: outbound.port, stsMatch: null, dane: null, excluded });
      if (excluded) continue;
      candidates.push({
        host: host.host,
        preference: host.preference,
        addresses: host.addresses,
        port: outbound.port,
        requireValidCert: false,
        stsMatch: null,
        servername: host.host,
        stsTesting: false,
        implicit: host.implicit,
        dane: null,
      });
    }
    const planBase = { ...base, hosts };
    if (candidates.length > 0) return { ...planBase, kind: 'deliver', candidates, wouldFail: [] };
    return noCandidates(planBase, hosts);
  }

  /** The resolver's DNSSEC-aware lookups when it validates (DANE on); null otherwise. */
  function daneResolver(): Pick<DnsResolver, 'resolveMxSecure' | 'resolveAddressesSecure' | 'resolveTlsa'> | null {
    const r = deps.resolver;
    if (r.validating !== true || !r.resolveMxSecure || !r.resolveAddressesSecure || !r.resolveTlsa) return null;
    return r as Pick<DnsResolver, 'resolveMxSecure' | 'resolveAddressesSecure' | 'resolveTlsa'>;
  }

  return { planDelivery, planOpportunistic, domainRule };
}

function noCandidates(base: PlanBase, hosts: readonly PlannedHost[]): DeliveryPlan {
  // A host whose TLSA lookup was bogus might be the one that would have worked: wait, never divert or deliver around it.
  if (hosts.some((host) => host.excluded === DANE_TLSA_BOGUS)) {
    const bogus = hosts.filter((host) => host.excluded === DANE_TLSA_BOGUS).map((host) => host.host);
    return { ...base, kind: 'defer', code: DANE_TLSA_BOGUS, reason: `TLSA lookup failed (bogus or unanswered) for ${bogus.join(', ')}; no other MX host is usable` };
  }
  if (hosts.length > 0 && hosts.every((host) => host.excluded === 'mx-not-in-policy')) {
    return { ...base, kind: 'divert', code: 'mta-sts-no-matching-mx', reason: `MTA-STS enforce: no MX host matches the policy (${base.mtaSts?.policy?.mx.join(', ') ?? ''})` };
  }
  if (hosts.some((host) => host.excluded === 'address-lookup-temporary')) {
    return { ...base, kind: 'defer', code: 'dns-temporary', reason: 'no MX host address could be resolved (temporary DNS failure)' };
  }
  // MX hosts that do not resolve may be a transient publishing error: retry until maxQueueTime.
  return { ...base, kind: 'defer', code: 'mx-no-address', reason: `no MX host has an address: ${hosts.map((h) => h.host).join(', ')}` };
}

/** The plan for a domain whose MX lookup found no host to try: a bounce for what is permanent, else a deferral. */
function noMailHosts(domain: string, mx: Exclude<MxLookup, { kind: 'hosts' }>, base: PlanBase): DeliveryPlan {
  switch (mx.kind) {
    case 'null-mx':
      return { ...base, kind: 'bounce', code: 'null-mx', reason: `${domain} publishes a null MX (RFC 7505): it accepts no mail`, status: '5.1.10', reply: '556 5.1.10 Recipient address has null MX' };
    case 'nxdomain':
      return { ...base, kind: 'bounce', code: 'nxdomain', reason: `${domain} does not exist (NXDOMAIN)`, status: '5.1.2', reply: '550 5.1.2 Recipient domain does not exist' };
    case 'no-hosts':
      return { ...base, kind: 'bounce', code: 'no-mail-host', reason: mx.error, status: '5.1.2', reply: '550 5.1.2 Recipient domain has no mail server' };
    case 'temporary':
      return { ...base, kind: 'defer', code: 'dns-temporary', reason: `MX lookup failed: ${mx.error}` };
  }
}
