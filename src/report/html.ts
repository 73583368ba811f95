import type { ReportData } from './types';

/** The report as one self-contained HTML page (summary, SVG charts, tables). Placeholder until the renderer lands: fails loudly. */
export function renderReportHtml(_data: ReportData): string {
  throw new Error('the HTML report renderer is not built yet');
}
