import { DnsError, normalizeName, type DnsResolver } from '../resolver';
import { decodeCachedPolicy, decodeFetchFailure, type CachedPolicy, type PolicyCache } from './cache';
import { PolicyFetchError, type PolicyFetcher } from './fetch';
import { parseStsPolicy, type StsPolicy } from './policy';
import { selectStsRecord } from './record';

export { mxMatchesPattern, mxMatchesPolicy, isValidMxPattern } from './match';
export { parseStsPolicy, MAX_POLICY_AGE, type StsPolicy } from './policy';
export { parseStsRecord, selectStsRecord, type StsRecord } from './record';
export { createPolicyFetcher, policyUrl, PolicyFetchError, type PolicyFetcher } from './fetch';
export { memoryPolicyCache, readThroughPolicyCache, storePolicyCache, type PolicyCache } from './cache';

/** RFC 8461 §3.3: wait at least this long before fetching the same policy id again after a failure. */
export const FETCH_RETRY_BACKOFF = 5 * 60_000;

/** What MTA-STS says about one domain right now, with the evidence of how we know. */
export interface MtaStsResult {
  /** The TXT record found now (null: none, invalid, or the lookup failed). */
  record: { id: string } | null;
  /** The policy in force: fetched now or from the cache; mode none included. */
  policy: StsPolicy | null;
  /** The id of the policy in force. */
  policyId: string | null;
  source: 'fetched' | 'cache' | null;
  /** What went wrong on the way (a lookup, fetch or parse failure), even when a cached policy covers it. */
  error: string | null;
  /** TLS-RPT result type of that failure, when it has one. */
  errorType: 'sts-policy-fetch-error' | 'sts-policy-invalid' | 'sts-webpki-invalid' | null;
  /** The TXT lookup failed temporarily and no cached policy exists: the answer is unknown. */
  temporary: boolean;
}

export interface MtaSts {
  lookup(domain: string): Promise<MtaStsResult>;
}

/** Told about every lookup result (the relay wires it to its metrics). */
export interface MtaStsObserver {
  lookedUp(result: MtaStsResult): void;
}

export interface MtaStsDeps {
  resolver: Pick<DnsResolver, 'resolveTxt'>;
  fetcher: PolicyFetcher;
  cache: PolicyCache;
  now?: () => number;
  /** Told about failed fetches (domain, id and error only). */
  onFetchFailure?: (event: { domain: string; id: string; error: string; cachedMode: StsPolicy['mode'] | null }) => void;
  /** Told about every lookup result. */
  observer?: MtaStsObserver;
}

const policyKey = (domain: string) => `policy:${domain}`;
const failureKey = (domain: string) => `failure:${domain}`;

/**
 * Discovery, fetch and cache (RFC 8461 §3, §5.1). The cache holds the last valid policy until its
 * max_age runs out; a new TXT id triggers a refetch; a failed refetch keeps the cached policy; a
 * fetched `mode: none` removes it. A missing TXT record alone does not remove a cached policy.
 */
export function createMtaSts(deps: MtaStsDeps): MtaSts {
  const now = deps.now ?? Date.now;

  async function cachedPolicy(domain: string): Promise<CachedPolicy | undefined> {
    const cached = decodeCachedPolicy(await deps.cache.get(policyKey(domain)));
    return cached && cached.expiresAt > now() ? cached : undefined;
  }

  function fromCache(cached: CachedPolicy | undefined, base: Partial<MtaStsResult>): MtaStsResult {
    return {
      record: null,
      error: null,
      errorType: null,
      temporary: false,
      ...base,
      policy: cached?.policy ?? null,
      policyId: cached?.id ?? null,
      source: cached ? 'cache' : null,
    };
  }

  async function lookup(rawDomain: string): Promise<MtaStsResult> {
    const domain = normalizeName(rawDomain);
    let records: string[];
    try {
      records = await deps.resolver.resolveTxt(`_mta-sts.${domain}`);
    } catch (err) {
      if (!(err instanceof DnsError)) throw err;
      const cached = await cachedPolicy(domain);
      if (err.temporary) return fromCache(cached, { error: err.message, temporary: !cached });
      return fromCache(cached, {});
    }

    const selected = selectStsRecord(records);
    const cached = await cachedPolicy(domain);
    if (!selected.ok) return fromCache(cached, records.some((r) => r.startsWith('v=STSv1')) ? { error: `TXT record: ${selected.reason}` } : {});
    const record = { id: selected.record.id };
    if (cached && cached.id === record.id) return fromCache(cached, { record });

    const failure = decodeFetchFailure(await deps.cache.get(failureKey(domain)));
    if (failure && failure.id === record.id && now() - failure.at < FETCH_RETRY_BACKOFF) {
      return fromCache(cached, { record, error: `not refetched: the fetch for id ${record.id} failed less than 5 minutes ago (${failure.error})`, errorType: 'sts-policy-fetch-error' });
    }

    let outcome: { ok: true; policy: StsPolicy } | { ok: false; error: string; errorType: NonNullable<MtaStsResult['errorType']> };
    try {
      const body = await deps.fetcher(domain);
      const parsed = parseStsPolicy(body);
      outcome = parsed.ok ? parsed : { ok: false, error: `policy is invalid: ${parsed.reason}`, errorType: 'sts-policy-invalid' };
    } catch (err) {
      if (!(err instanceof PolicyFetchError)) throw err;
      outcome = { ok: false, error: err.message, errorType: err.type };
    }

    if (!outcome.ok) {
      deps.onFetchFailure?.({ domain, id: record.id, error: outcome.error, cachedMode: cached?.policy.mode ?? null });
      await deps.cache.set(failureKey(domain), JSON.stringify({ id: record.id, at: now(), error: outcome.error }), FETCH_RETRY_BACKOFF);
      return fromCache(cached, { record, error: outcome.error, errorType: outcome.errorType });
    }
    const policy = outcome.policy;
    await deps.cache.delete(failureKey(domain));
    if (policy.mode === 'none' || policy.maxAge === 0) {
      await deps.cache.delete(policyKey(domain));
    } else {
      const fetchedAt = now();
      const entry: CachedPolicy = { id: record.id, policy, fetchedAt, expiresAt: fetchedAt + policy.maxAge * 1000 };
      await deps.cache.set(policyKey(domain), JSON.stringify(entry), policy.maxAge * 1000);
    }
    return { record, policy, policyId: record.id, source: 'fetched', error: null, errorType: null, temporary: false };
  }

  const observer = deps.observer;
  if (!observer) return { lookup };
  return {
    lookup: async (domain) => {
      const result = await lookup(domain);
      observer.lookedUp(result);
      return result;
    },
  };
}
