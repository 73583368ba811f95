import { parseDuration } from '../config/units';

/** JSON-schema pattern for a duration: "90" (seconds), "500ms", "30s", "5m", "24h", "7d". */
export const DURATION_PATTERN = '^\\s*\\d+(\\.\\d+)?\\s*(ms|s|m|h|d)?\\s*$';

/** A duration in ms from an admin request or CLI option: a bare number means seconds. */
export function parseAdminDuration(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? Math.round(value * 1000) : undefined;
  return /^\s*\d+(\.\d+)?\s*$/.test(value) ? Math.round(Number(value) * 1000) : parseDuration(value);
}
