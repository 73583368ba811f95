import { evidenceDay } from '../store/evidence-chain';

/*
 * Dates as operators type them (`--from`, `--to`, `--before`, query strings), read the same way by every evidence
 * command, the report and the admin API: a day is a UTC day, a time must say its zone.
 */

const DAY_MS = 86_400_000;
const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?(?:Z|[+-]\d{2}:\d{2})$/;

/** "YYYY-MM-DD" when `text` is a real calendar day, else undefined. */
export function parseEvidenceDay(text: string): string | undefined {
  if (!DATE_ONLY.test(text)) return undefined;
  const ms = Date.parse(`${text}T00:00:00Z`);
  return Number.isFinite(ms) && evidenceDay(ms) === text ? text : undefined;
}

/**
 * One end of a period as epoch ms: YYYY-MM-DD is a UTC day (its start for `from`; for `to` the end of that day, so
 * the day is included), or a full ISO 8601 time with its zone (Z or ±hh:mm), taken as it is. Undefined otherwise
 * (an impossible date, a time without a zone: read in the machine's zone it would shift the period).
 */
export function parsePeriodBound(text: string, edge: 'from' | 'to'): number | undefined {
  const value = text.trim();
  const day = parseEvidenceDay(value);
  if (day !== undefined) {
    const ms = Date.parse(`${day}T00:00:00Z`);
    return edge === 'to' ? ms + DAY_MS : ms;
  }
  if (!DATE_TIME.test(value)) return undefined;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : undefined;
}

/** Why `text` is not a period bound, in words for an error message ("2026-11-31" is no calendar date, ...). */
export function periodBoundProblem(text: string): string {
  return DATE_ONLY.test(text.trim()) ? 'is not a calendar date' : 'is not a date: use YYYY-MM-DD (UTC) or an ISO 8601 time with its zone, e.g. 2026-11-02T08:00:00Z';
}
