import { buildReport } from '../../src/report/build';
import { produceReport, reportFileName } from '../../src/report';
import type { ReportData } from '../../src/report/types';
import { MemoryEvidenceLog, outcome, TLS13 } from './evidence-fixture';

jest.mock('../../src/report/html', () => ({ renderReportHtml: (data: ReportData) => `<html>${data.relay}</html>` }));
jest.mock('../../src/report/pdf', () => ({ renderReportPdf: async (data: ReportData) => Buffer.from(`%PDF-1.7 ${data.relay}`) }));

const FROM = Date.parse('2026-11-02T00:00:00Z');
const TO = Date.parse('2026-11-09T00:00:00Z');

async function data(): Promise<ReportData> {
  const log = new MemoryEvidenceLog();
  log.append([outcome({ at: FROM, queueId: 'q1', recipient: 'a@partner.example', outcome: 'delivered', tls: TLS13 })], FROM);
  return buildReport(log, { from: FROM, to: TO, domain: 'partner.example' }, { relay: 'relay.test', now: TO });
}

describe('produceReport', () => {
  it('gives the JSON as the data itself, two-space indented', async () => {
    const report = await data();
    const json = await produceReport('json', report);
    expect(json.contentType).toBe('application/json; charset=utf-8');
    expect(json.extension).toBe('json');
    expect(JSON.parse(json.body.toString('utf8'))).toEqual(report);
    expect(json.body.toString('utf8')).toContain('\n  "version": 1,');
  });

  it('gives CSV, and calls the HTML and PDF renderers', async () => {
    const report = await data();
    const csv = await produceReport('csv', report);
    expect([csv.contentType, csv.extension]).toEqual(['text/csv; charset=utf-8', 'csv']);
    expect(csv.body.toString('utf8').split('\r\n')[0]).toMatch(/^domain,messages,delivered,/);
    const html = await produceReport('html', report);
    expect([html.contentType, html.extension, html.body.toString()]).toEqual(['text/html; charset=utf-8', 'html', '<html>relay.test</html>']);
    const pdf = await produceReport('pdf', report);
    expect([pdf.contentType, pdf.extension, pdf.body.toString()]).toEqual(['application/pdf', 'pdf', '%PDF-1.7 relay.test']);
  });

  it('names the file after the period and the domain', async () => {
    expect(reportFileName(await data(), 'csv')).toBe('sealgate-report-2026-11-02_2026-11-09-partner.example.csv');
    expect(reportFileName({ period: { from: '2026-11-02T10:30:00.000Z', to: '2026-11-02T12:00:00.000Z' }, filters: { domain: null, sender: null } }, 'pdf')).toBe(
      'sealgate-report-2026-11-02T103000Z_2026-11-02T120000Z.pdf',
    );
  });
});
