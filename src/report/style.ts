/*
 * The report page's CSS (inline: the page makes no request). Dark text on white; printed on A4 with the summary
 * alone on page 1, each section starting a page, table headers repeated on every page a table spans.
 */
export const REPORT_CSS = `
@page { size: A4; margin: 14mm 14mm 18mm 14mm; }
:root { color-scheme: light; }
html { background: #fff; color: #1a1a1a; font: 10pt/1.45 "DejaVu Sans", "Liberation Sans", Arial, sans-serif; }
body { margin: 0 auto; max-width: 182mm; padding: 6mm; }
* { print-color-adjust: exact; -webkit-print-color-adjust: exact; }
h1 { font-size: 22pt; margin: 0 0 5mm; }
h2 { font-size: 15pt; margin: 7mm 0 3mm; padding-bottom: 1mm; border-bottom: 1px solid #777; }
h3, caption { font-size: 11pt; font-weight: bold; text-align: left; margin: 5mm 0 2mm; }
h1, h2, h3, caption, figcaption { break-after: avoid; }
.kicker { margin: 0 0 1mm; color: #3d3d3d; font-size: 9pt; letter-spacing: 0.06em; text-transform: uppercase; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 1.5mm 6mm; margin: 0 0 5mm; }
dl.facts dt { font-weight: bold; }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
.statement { margin: 4mm 0; padding: 3mm 4mm; border-left: 4px solid #5c5c5c; background: #f3f5f7; }
.statement.ok { border-color: #1b7a3a; }
.statement.warn { border-color: #b3261e; background: #fcefee; font-weight: bold; }
strong.warn { color: #b3261e; }
.note { color: #333; font-size: 9pt; }
.empty { padding: 2mm 0; font-style: italic; }
table { width: 100%; margin: 0 0 5mm; border-collapse: collapse; font-size: 9pt; }
thead { display: table-header-group; }
tfoot { display: table-row-group; }
tr { break-inside: avoid; }
th, td { padding: 1.2mm 2mm; border-bottom: 1px solid #c8c8c8; text-align: left; vertical-align: top; }
thead th { border-bottom: 2px solid #333; background: #eceff2; }
tfoot th, tfoot td { border-top: 2px solid #333; }
.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
.nowrap { white-space: nowrap; }
td, th { overflow-wrap: anywhere; }
th.domain { min-width: 32mm; }
/* Six columns with long check reasons: fixed widths, or the short columns get squeezed to a few letters a line. */
#posture-table { table-layout: fixed; }
#posture-table th.domain { min-width: 0; }
#posture-table thead th:nth-child(1) { width: 17%; }
#posture-table thead th:nth-child(2) { width: 11%; }
#posture-table thead th:nth-child(3) { width: 26%; }
#posture-table thead th:nth-child(4) { width: 12%; }
#posture-table thead th:nth-child(5) { width: 18%; }
#posture-table thead th:nth-child(6) { width: 16%; }
ul.cell { font-size: 8.5pt; }
.hash { font-family: "DejaVu Sans Mono", monospace; font-size: 7.5pt; word-break: break-all; }
code { font-family: "DejaVu Sans Mono", monospace; font-size: 90%; overflow-wrap: anywhere; }
ul.cell { margin: 0; padding: 0; list-style: none; }
.reason { color: #333; font-size: 8.5pt; }
.swatch { display: inline-block; width: 3mm; height: 3mm; margin-right: 2mm; vertical-align: -0.3mm; }
.swatch.delivered { background: #1b7a3a; }
.swatch.diverted { background: #1f5aa6; }
.swatch.bounced { background: #b3261e; }
.swatch.deferred { background: #a86400; }
.contents a { color: #1a1a1a; }
figure { margin: 0 0 7mm; break-inside: avoid; }
figcaption { margin-bottom: 2mm; font-weight: bold; }
figure svg { display: block; max-width: 100%; height: auto; }
section.summary { break-after: page; }
section.part { break-before: page; }
@media screen {
  section.part { margin-top: 12mm; padding-top: 4mm; border-top: 3px double #777; }
}
@media print {
  body { max-width: none; padding: 0; }
}
`;
