import type { Config } from '../config/schema';
import type { Logger } from '../log/logger';
import { createMtaSts, createPolicyFetcher, memoryPolicyCache, type MtaSts, type MtaStsObserver, type PolicyCache } from './mta-sts';
import { createPlanner, type Planner } from './plan';
import { createResolver, type DnsResolver } from './resolver';
import { buildSessionOptions, type MxSessionOptions } from './session-options';
import { buildTlsProfile, type TlsProfile } from './tls-profile';
import { buildTrustStore } from './trust';

export type { Candidate, DeliveryPlan, PlanPolicy, PlannedHost, Planner, TlsLevel, WouldFail } from './plan';
export { storePolicyCache, memoryPolicyCache, type MtaStsObserver, type MtaStsResult, type PolicyCache } from './mta-sts';
export { buildSessionOptions, type MxSessionOptions } from './session-options';
export { DnsError, type DnsResolver } from './resolver';

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
