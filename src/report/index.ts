import { renderReportCsv } from './csv';
import { renderReportHtml } from './html';
import { renderReportPdf } from './pdf';
import type { ReportData, ReportFormat } from './types';

export { buildReport, type BuildReportOptions, type PostureCheck, type PostureDomain, type ReportLog } from './build';
export { renderReportCsv } from './csv';
export * from './types';

/** A rendered report: what to write or send, its media type and the file name extension. */
export interface ProducedReport {
  body: Buffer;
  contentType: string;
  extension: string;
}

/** Renders the report in one format. */
export async function produceReport(format: ReportFormat, data: ReportData): Promise<ProducedReport> {
  switch (format) {
    case 'json':
      return { body: Buffer.from(`${JSON.stringify(data, null, 2)}\n`, 'utf8'), contentType: 'application/json; charset=utf-8', extension: 'json' };
    case 'csv':
      return { body: Buffer.from(renderReportCsv(data), 'utf8'), contentType: 'text/csv; charset=utf-8', extension: 'csv' };
    case 'html':
      return { body: Buffer.from(renderReportHtml(data), 'utf8'), contentType: 'text/html; charset=utf-8', extension: 'html' };
    case 'pdf':
      return { body: await renderReportPdf(data), contentType: 'application/pdf', extension: 'pdf' };
  }
}

/** The file name of a report: sealgate-report-<from>_<to>[-domain].<ext>, safe for a folder and a Content-Disposition. */
export function reportFileName(data: Pick<ReportData, 'period' | 'filters'>, extension: string): string {
  const stamp = (iso: string): string =>
    iso
      .replace(/\.000Z$/, 'Z')
      .replace(/T00:00:00Z$/, '')
      .replace(/:/g, '');
  const domain = data.filters.domain === null ? '' : `-${data.filters.domain.replace(/[^a-z0-9.-]/gi, '_')}`;
  return `sealgate-report-${stamp(data.period.from)}_${stamp(data.period.to)}${domain}.${extension}`;
}
