import type { FailureDetail, PolicyType } from './types';

/**
 * How a session's policy and failure detail become the opaque counter keys the store adds up (and back).
 * Keys are JSON arrays with a fixed field order, so the same policy or detail always makes the same key.
 */

/** A policy without its domain (the domain is the counter's own key). */
export interface PolicyKey {
  type: PolicyType;
  strings: string[];
  mxHost: string[];
}

/** A failure detail without its count. */
export type DetailKey = Omit<FailureDetail, 'failed-session-count'>;

const DETAIL_FIELDS = ['result-type', 'sending-mta-ip', 'receiving-mx-hostname', 'receiving-mx-helo', 'receiving-ip', 'additional-information', 'failure-reason-code'] as const;

export function policyKey(policy: PolicyKey): string {
  return JSON.stringify([policy.type, policy.strings, policy.mxHost]);
}

export function detailKey(detail: DetailKey): string {
  return JSON.stringify(DETAIL_FIELDS.map((field) => detail[field] ?? null));
}

const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');

/** The policy of a key; undefined for a key this module did not write. */
export function parsePolicyKey(key: string): PolicyKey | undefined {
  try {
    const v = JSON.parse(key) as unknown;
    if (!Array.isArray(v) || v.length !== 3) return undefined;
    const [type, strings, mxHost] = v as unknown[];
    if ((type !== 'sts' && type !== 'tlsa' && type !== 'no-policy-found') || !isStrings(strings) || !isStrings(mxHost)) return undefined;
    return { type, strings, mxHost };
  } catch {
    return undefined;
  }
}

/** The detail of a key; undefined for a key this module did not write. */
export function parseDetailKey(key: string): DetailKey | undefined {
  try {
    const v = JSON.parse(key) as unknown;
    if (!Array.isArray(v) || v.length !== DETAIL_FIELDS.length || typeof v[0] !== 'string') return undefined;
    const detail: Record<string, string> = {};
    for (const [i, field] of DETAIL_FIELDS.entries()) {
      const value = (v as unknown[])[i];
      if (value === null) continue;
      if (typeof value !== 'string') return undefined;
      detail[field] = value;
    }
    return detail as unknown as DetailKey;
  } catch {
    return undefined;
  }
}
