import { html, raw } from './escape';
import { utc } from './format';
import { anchorsSection, chartsSection, diversionsSection, domainsSection, portalSection, postureSection } from './sections';
import { REPORT_CSS } from './style';
import { summarySection } from './summary';
import type { ReportData } from './types';

/*
 * The auditor's report as one self-contained HTML page: inline CSS and server-drawn SVG charts, no script and no
 * request (the CSP below forbids both, so a page opened from a mail or a share cannot reach out).
 */

export const REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; base-uri 'none'; form-action 'none'";

/** The page's title: relay and period, also used as the PDF's document title. */
export function reportTitle(data: ReportData): string {
  return `Sealgate compliance report · ${data.relay} · ${utc(data.period.from)} to ${utc(data.period.to)}`;
}

/** The report as one self-contained HTML page (summary, SVG charts, tables). */
export function renderReportHtml(data: ReportData): string {
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta http-equiv="Content-Security-Policy" content="${REPORT_CSP}" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="color-scheme" content="light" />
        <meta name="generator" content="Sealgate" />
        <title>${reportTitle(data)}</title>
        <style>
          ${raw(REPORT_CSS)}
        </style>
      </head>
      <body>
        <main>${summarySection(data)} ${chartsSection(data)} ${domainsSection(data)} ${diversionsSection(data)} ${portalSection(data)} ${postureSection(data)} ${anchorsSection(data)}</main>
      </body>
    </html> `.markup;
}
