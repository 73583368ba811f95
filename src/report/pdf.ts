import type { ReportData } from './types';

/** The report as a PDF, printed from its HTML by headless Chromium. Placeholder until the renderer lands: fails loudly. */
export function renderReportPdf(_data: ReportData): Promise<Buffer> {
  return Promise.reject(new Error('the PDF report renderer is not built yet'));
}
