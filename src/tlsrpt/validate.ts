import { isIP } from 'node:net';
import { POLICY_TYPES, RESULT_TYPES } from './types';

/**
 * A strict check of a report against RFC 8460 §4.4 (with erratum 6241: `mx-host` is an array; a lone string
 * is accepted too, as the RFC's example has one): every required field present with its type, nothing
 * outside the field list, counts non-negative integers, result and policy types from the registry, IPs
 * that are IPs, date-times in RFC 3339. Returns the problems found (empty: valid).
 */
export function validateReport(report: unknown): string[] {
  const problems: string[] = [];
  const fail = (where: string, what: string) => problems.push(`${where}: ${what}`);

  if (!isObject(report)) return ['report: not a JSON object'];
  onlyKeys(report, 'report', ['organization-name', 'date-range', 'contact-info', 'report-id', 'policies'], fail);
  for (const key of ['organization-name', 'contact-info', 'report-id'] as const) requiredString(report, key, 'report', fail);

  const range = report['date-range'];
  if (!isObject(range)) fail('report.date-range', 'missing or not an object');
  else {
    onlyKeys(range, 'report.date-range', ['start-datetime', 'end-datetime'], fail);
    const start = dateTime(range['start-datetime'], 'report.date-range.start-datetime', fail);
    const end = dateTime(range['end-datetime'], 'report.date-range.end-datetime', fail);
    if (start !== undefined && end !== undefined && end < start) fail('report.date-range', 'end-datetime before start-datetime');
  }

  const policies = report.policies;
  if (!Array.isArray(policies)) {
    fail('report.policies', 'missing or not an array');
    return problems;
  }
  for (const [i, entry] of policies.entries()) {
    const where = `report.policies[${i}]`;
    if (!isObject(entry)) {
      fail(where, 'not an object');
      continue;
    }
    onlyKeys(entry, where, ['policy', 'summary', 'failure-details'], fail);
    const policy = entry.policy;
    if (!isObject(policy)) fail(`${where}.policy`, 'missing or not an object');
    else {
      onlyKeys(policy, `${where}.policy`, ['policy-type', 'policy-string', 'policy-domain', 'mx-host'], fail);
      if (!(POLICY_TYPES as readonly unknown[]).includes(policy['policy-type'])) fail(`${where}.policy.policy-type`, `not one of ${POLICY_TYPES.join(', ')}`);
      requiredString(policy, 'policy-domain', `${where}.policy`, fail);
      if ('policy-string' in policy && !isStrings(policy['policy-string'])) fail(`${where}.policy.policy-string`, 'not an array of strings');
      if ('mx-host' in policy && !isStrings(policy['mx-host']) && typeof policy['mx-host'] !== 'string') fail(`${where}.policy.mx-host`, 'not an array of strings');
      if (policy['policy-type'] !== 'no-policy-found' && !isStrings(policy['policy-string'])) fail(`${where}.policy.policy-string`, `required for policy-type ${String(policy['policy-type'])}`);
    }
    const summary = entry.summary;
    let failures: number | undefined;
    if (!isObject(summary)) fail(`${where}.summary`, 'missing or not an object');
    else {
      onlyKeys(summary, `${where}.summary`, ['total-successful-session-count', 'total-failure-session-count'], fail);
      count(summary['total-successful-session-count'], `${where}.summary.total-successful-session-count`, fail);
      failures = count(summary['total-failure-session-count'], `${where}.summary.total-failure-session-count`, fail);
    }
    const details = entry['failure-details'];
    if (details === undefined) continue;
    if (!Array.isArray(details)) {
      fail(`${where}.failure-details`, 'not an array');
      continue;
    }
    let sum = 0;
    for (const [j, detail] of details.entries()) {
      const at = `${where}.failure-details[${j}]`;
      if (!isObject(detail)) {
        fail(at, 'not an object');
        continue;
      }
      onlyKeys(
        detail,
        at,
        ['result-type', 'sending-mta-ip', 'receiving-mx-hostname', 'receiving-mx-helo', 'receiving-ip', 'failed-session-count', 'additional-information', 'failure-reason-code'],
        fail,
      );
      if (!(RESULT_TYPES as readonly unknown[]).includes(detail['result-type'])) fail(`${at}.result-type`, `not a registered result type: ${JSON.stringify(detail['result-type'])}`);
      sum += count(detail['failed-session-count'], `${at}.failed-session-count`, fail) ?? 0;
      for (const key of ['sending-mta-ip', 'receiving-ip'] as const) {
        if (key in detail && (typeof detail[key] !== 'string' || isIP(detail[key]) === 0)) fail(`${at}.${key}`, 'not an IP address');
      }
      for (const key of ['receiving-mx-hostname', 'receiving-mx-helo', 'additional-information', 'failure-reason-code'] as const) {
        if (key in detail && typeof detail[key] !== 'string') fail(`${at}.${key}`, 'not a string');
      }
    }
    if (failures !== undefined && sum > failures) fail(`${where}.failure-details`, `failed-session-count adds up to ${sum}, more than total-failure-session-count ${failures}`);
  }
  return problems;
}

type Fail = (where: string, what: string) => void;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isStrings(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === 'string');
}

function onlyKeys(obj: Record<string, unknown>, where: string, allowed: string[], fail: Fail): void {
  for (const key of Object.keys(obj)) if (!allowed.includes(key)) fail(where, `unknown field ${JSON.stringify(key)}`);
}

function requiredString(obj: Record<string, unknown>, key: string, where: string, fail: Fail): void {
  if (typeof obj[key] !== 'string' || obj[key] === '') fail(`${where}.${key}`, 'missing or not a non-empty string');
}

function count(v: unknown, where: string, fail: Fail): number | undefined {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    fail(where, 'missing or not a non-negative integer');
    return undefined;
  }
  return v;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

function dateTime(v: unknown, where: string, fail: Fail): number | undefined {
  const at = typeof v === 'string' && RFC3339.test(v) ? Date.parse(v) : Number.NaN;
  if (Number.isNaN(at)) {
    fail(where, 'missing or not an RFC 3339 date-time');
    return undefined;
  }
  return at;
}
