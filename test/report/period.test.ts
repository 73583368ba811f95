import { parseReportDate, parseReportFormat, parseReportRequest, ReportRequestError } from '../../src/report/period';

const at = (iso: string) => Date.parse(iso);

describe('report period', () => {
  it('takes a UTC day as its start for from and its end for to, so --to includes that day', () => {
    expect(parseReportDate('2026-11-02', 'from')).toBe(at('2026-11-02T00:00:00Z'));
    expect(parseReportDate('2026-11-02', 'to')).toBe(at('2026-11-03T00:00:00Z'));
    expect(parseReportDate('2024-02-29', 'to')).toBe(at('2024-03-01T00:00:00Z'));
    expect(parseReportRequest({ from: '2026-11-02', to: '2026-11-02' })).toEqual({ from: at('2026-11-02T00:00:00Z'), to: at('2026-11-03T00:00:00Z') });
  });

  it('takes a full ISO time with its zone as it is', () => {
    expect(parseReportDate('2026-11-02T08:30:00Z', 'to')).toBe(at('2026-11-02T08:30:00Z'));
    expect(parseReportDate('2026-11-02T08:30+01:00', 'from')).toBe(at('2026-11-02T07:30:00Z'));
    expect(parseReportDate(' 2026-11-02T08:30:00.250Z ', 'from')).toBe(at('2026-11-02T08:30:00.250Z'));
  });

  it('refuses what is no date, a time without its zone, and an empty or reversed period', () => {
    for (const bad of ['2026-02-30', '2026-13-01', '02/11/2026', 'yesterday', '2026-11-02T08:30:00', '2026-11-02 08:30Z', '']) {
      expect(() => parseReportDate(bad, 'from')).toThrow(ReportRequestError);
    }
    expect(() => parseReportRequest({ from: '2026-11-03', to: '2026-11-02' })).toThrow(/period is empty/);
    expect(() => parseReportRequest({ from: '2026-11-02T10:00:00Z', to: '2026-11-02T10:00:00Z' })).toThrow(/period is empty/);
    expect(() => parseReportRequest({ from: '2026-11-02', to: 'soon' })).toThrow(expect.objectContaining({ field: 'to', message: expect.stringContaining('"soon" is not a date') }));
  });

  it('normalises the domain and sender filters and refuses bad ones', () => {
    const base = { from: '2026-11-01', to: '2026-11-30' };
    expect(parseReportRequest({ ...base, domain: 'Partner.Example.', sender: '<App@Clinic.test>' })).toMatchObject({ domain: 'partner.example', sender: 'app@clinic.test' });
    expect(parseReportRequest({ ...base, sender: '<>' }).sender).toBe('');
    expect(parseReportRequest({ ...base, sender: '' }).sender).toBe('');
    expect(() => parseReportRequest({ ...base, domain: 'not a domain' })).toThrow(expect.objectContaining({ field: 'domain' }));
    expect(() => parseReportRequest({ ...base, sender: 'no-at-sign' })).toThrow(expect.objectContaining({ field: 'sender' }));
  });

  it('knows the four formats', () => {
    expect(parseReportFormat(undefined)).toBe('json');
    expect(parseReportFormat('CSV')).toBe('csv');
    expect(parseReportFormat('pdf')).toBe('pdf');
    expect(() => parseReportFormat('xlsx')).toThrow(expect.objectContaining({ field: 'format' }));
  });
});
