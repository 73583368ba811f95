import { isValidMxPattern } from './match';

/** A validated MTA-STS policy (RFC 8461 §3.2). */
export interface StsPolicy {
  mode: 'enforce' | 'testing' | 'none';
  /** `mx` patterns in the order given (empty only for mode none). */
  mx: string[];
  /** Seconds the policy may be cached. */
  maxAge: number;
}

export type StsPolicyResult = { ok: true; policy: StsPolicy } | { ok: false; reason: string };

/** RFC 8461 §3.2: max_age is at most 31557600 (about one year); larger values are rejected. */
export const MAX_POLICY_AGE = 31_557_600;

const MODES = new Set(['enforce', 'testing', 'none']);

/**
 * Strict parser of the policy body. Lines end in LF or CRLF (the last may lack one); each is
 * `key: value` with optional spaces or tabs after the colon; keys and values are case-sensitive.
 * Blank lines and unknown keys are ignored; for keys other than `mx` the first occurrence wins.
 */
export function parseStsPolicy(text: string): StsPolicyResult {
  const fields = new Map<string, string>();
  const mx: string[] = [];
  for (const [index, line] of text.split(/\r?\n/).entries()) {
    // Blank lines are outside the grammar but common (a trailing empty line); they carry nothing.
    if (/^[ \t]*$/.test(line)) continue;
    const match = /^([A-Za-z0-9][A-Za-z0-9_.-]{0,31}):[ \t]*(.*?)[ \t]*$/.exec(line);
    if (!match) return { ok: false, reason: `line ${index + 1} is not "key: value"` };
    const [, key, value] = match as unknown as [string, string, string];
    // eslint-disable-next-line no-control-regex -- control characters are exactly what this refuses
    if (/[\x00-\x1f\x7f]/.test(value)) return { ok: false, reason: `line ${index + 1} has a control character in its value` };
    if (key === 'mx') mx.push(value);
    else if (!fields.has(key)) fields.set(key, value);
  }

  const version = fields.get('version');
  if (version === undefined) return { ok: false, reason: 'no "version" field' };
  if (version !== 'STSv1') return { ok: false, reason: `version "${version}" is not "STSv1"` };

  const mode = fields.get('mode');
  if (mode === undefined) return { ok: false, reason: 'no "mode" field' };
  if (!MODES.has(mode)) return { ok: false, reason: `mode "${mode}" is not enforce, testing or none` };

  const maxAgeText = fields.get('max_age');
  if (maxAgeText === undefined) return { ok: false, reason: 'no "max_age" field' };
  if (!/^\d{1,10}$/.test(maxAgeText)) return { ok: false, reason: `max_age "${maxAgeText}" is not 1 to 10 digits` };
  const maxAge = Number(maxAgeText);
  if (maxAge > MAX_POLICY_AGE) return { ok: false, reason: `max_age ${maxAge} is above the maximum of ${MAX_POLICY_AGE}` };

  const invalid = mx.find((pattern) => !isValidMxPattern(pattern));
  if (invalid !== undefined) return { ok: false, reason: `mx "${invalid}" is not a valid host name pattern` };
  if (mode !== 'none' && mx.length === 0) return { ok: false, reason: `mode ${mode} needs at least one "mx" field` };

  return { ok: true, policy: { mode: mode as StsPolicy['mode'], mx, maxAge } };
}
