/**
 * MX host matching against MTA-STS `mx` patterns (RFC 8461 §4.1): case-insensitive, trailing dots
 * ignored, and a `*.` wildcard stands for exactly one whole leftmost label.
 */

function normalize(name: string): string {
  return name.trim().replace(/\.$/, '').toLowerCase();
}

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** Whether a policy `mx` value is well formed: `[*.]label(.label)+`, in A-labels. */
export function isValidMxPattern(pattern: string): boolean {
  const name = normalize(pattern);
  const labels = name.split('.');
  const rest = labels[0] === '*' ? labels.slice(1) : labels;
  if (rest.length < 1 || name.length > 253) return false;
  return rest.every((label) => LABEL.test(label) || /^xn--[a-z0-9-]+$/.test(label));
}

export function mxMatchesPattern(host: string, pattern: string): boolean {
  const mx = normalize(host);
  const want = normalize(pattern);
  if (mx === '' || want === '') return false;
  if (want.startsWith('*.')) {
    const suffix = want.slice(1); // ".example.com"
    if (!mx.endsWith(suffix)) return false;
    const first = mx.slice(0, mx.length - suffix.length);
    return first.length > 0 && !first.includes('.');
  }
  return mx === want;
}

export function mxMatchesPolicy(host: string, patterns: readonly string[]): boolean {
  return patterns.some((pattern) => mxMatchesPattern(host, pattern));
}
