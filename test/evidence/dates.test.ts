import { parseEvidenceDay, parsePeriodBound } from '../../src/evidence/dates';

const at = (iso: string) => Date.parse(iso);

describe('operator dates', () => {
  it('reads a day as a UTC day: its start, or through its end for the upper bound', () => {
    expect(parsePeriodBound('2026-11-02', 'from')).toBe(at('2026-11-02T00:00:00Z'));
    expect(parsePeriodBound('2026-11-02', 'to')).toBe(at('2026-11-03T00:00:00Z'));
    expect(parseEvidenceDay('2024-02-29')).toBe('2024-02-29');
  });

  it('takes a time only with its zone', () => {
    expect(parsePeriodBound('2026-11-02T08:30+01:00', 'to')).toBe(at('2026-11-02T07:30:00Z'));
    expect(parsePeriodBound('2026-11-02T08:30', 'from')).toBeUndefined();
  });

  it('refuses impossible dates and other words', () => {
    for (const bad of ['2026-02-30', '2025-02-29', '2026-13-01', 'yesterday', '']) {
      expect(parsePeriodBound(bad, 'from')).toBeUndefined();
      expect(parseEvidenceDay(bad)).toBeUndefined();
    }
  });
});
