import { dequal } from 'dequal';
import type { Config } from '../config/schema';
import type { Logger } from '../log/logger';
import { createMtaSts, createPolicyFetcher, memoryPolicyCache, type MtaSts, type MtaStsObserver, type PolicyCache } from './mta-sts';
import { createPlanner, type Planner } from './plan';
import { createResolver, type DnsResolver } from './resolver';
import { buildSessionOptions, type MxSessionOptions } from './session-options';
import { buildTlsProfile, type TlsProfile } from './tls-profile';
import { buildTrustStore } from './trust';

export type { Candidate, DeliveryPlan, PlanPolicy, PlannedHost, Planner, TlsLevel, WouldFail } from './plan';
export { storePolicyCache, memoryPolicyCache, readThroughPolicyCache, type MtaStsObserver, type MtaStsResult, type PolicyCache } from './mta-sts';
export { buildSessionOptions, type MxSessionOptions } from './session-options';
export { DnsError, dnssecSummary, type DnsResolver } from './resolver';
export { requireTlsEligibility, REQUIRETLS_POLICY_UNAVAILABLE, REQUIRETLS_UNAUTHENTICATED_MX, type RequireTlsEligibility } from './requiretls';

/** Everything outbound needs from the policy module, built once at startup from the config. */
export interface PolicyRuntime {
  resolver: DnsResolver;
  profile: TlsProfile;
  mtaSts: MtaSts | null;
  planner: Planner;
  /** Options for every outbound MX session (src/smtp-client): the profile, the MX trust store, our EHLO name and the timeouts. */
  sessionOptions: MxSessionOptions;
}

export interface PolicyRuntimeOptions {
  /** Where MTA-STS policies are cached: storePolicyCache(store) in the relay (shared by instances). */
  cache?: PolicyCache;
  /** Already built profile (the relay builds it once and shares it with inbound). */
  profile?: TlsProfile;
  resolver?: DnsResolver;
  now?: () => number;
  random?: () => number;
  /** Warned about failed MTA-STS fetches (RFC 8461 §10.3 asks that they be logged). */
  logger?: Logger;
  /** Told about every MTA-STS lookup result (the relay counts them for /metrics). */
  mtaStsObserver?: MtaStsObserver;
}

export function createPolicyRuntime(config: Config, options: PolicyRuntimeOptions = {}): PolicyRuntime {
  const resolver = options.resolver ?? createResolver(config.dns, options.now ? { now: options.now } : {});
  const profile = options.profile ?? buildTlsProfile(config.tlsProfile);
  const mtaSts = config.mtaSts.enabled
    ? createMtaSts({
        resolver,
        cache: options.cache ?? memoryPolicyCache(options.now),
        fetcher: createPolicyFetcher({
          lookup: resolver.lookup,
          ca: buildTrustStore(config.mtaSts.extraCaFile),
          connectTimeout: config.mtaSts.connectTimeout,
          totalTimeout: config.mtaSts.fetchTimeout,
          maxBytes: config.mtaSts.maxPolicySize,
          port: config.mtaSts.port,
        }),
        ...(options.now ? { now: options.now } : {}),
        onFetchFailure: (event) => options.logger?.warn({ mtaSts: event }, 'MTA-STS policy fetch failed'),
        ...(options.mtaStsObserver ? { observer: options.mtaStsObserver } : {}),
      })
    : null;
  const planner = createPlanner({ config, resolver, mtaSts, ...(options.random ? { random: options.random } : {}) });
  const sessionOptions = buildSessionOptions(config, profile);
  return { resolver, profile, mtaSts, planner, sessionOptions };
}

/** The settings the policy runtime is built from; a reload that changes none of them keeps the runtime. */
export const POLICY_KEYS = ['domains', 'tlsProfile', 'dns', 'mtaSts', 'outbound'] as const;

/** Whether a new config needs a new policy runtime (see POLICY_KEYS). */
export function policyChanged(previous: Config, next: Config): boolean {
  return POLICY_KEYS.some((key) => !dequal(previous[key], next[key]));
}

/**
 * The policy runtime for a reloaded config, built whole before anything switches (a bad profile or an
 * unreadable extra CA file throws here, refusing the reload). The DNS resolver, and so its cache, is kept
 * unless `dns` changed; the MTA-STS policy cache is whatever `options.cache` is (the store's in the relay).
 */
export function rebuildPolicyRuntime(next: Config, previous: { config: Config; runtime: PolicyRuntime }, options: Omit<PolicyRuntimeOptions, 'resolver'> = {}): PolicyRuntime {
  const resolver = dequal(previous.config.dns, next.dns) ? previous.runtime.resolver : undefined;
  return createPolicyRuntime(next, { ...options, ...(resolver ? { resolver } : {}), profile: options.profile ?? buildTlsProfile(next.tlsProfile) });
}

/**
 * A PolicyRuntime that always answers with the runtime in force now, for parts that ask one question at a
 * time (domain checks, the admin API); a delivery takes the runtime itself at its start instead.
 */
export function livePolicy(current: () => PolicyRuntime): PolicyRuntime {
  return {
    get resolver() {
      return current().resolver;
    },
    get profile() {
      return current().profile;
    },
    get mtaSts() {
      return current().mtaSts;
    },
    get planner() {
      return current().planner;
    },
    get sessionOptions() {
      return current().sessionOptions;
    },
  };
}
