/*
 * Safe-by-default HTML building for the report page: every value interpolated into `html` is escaped unless it is
 * already markup built by `html` (or passed through `raw`, kept for the chart SVG echarts produced and escaped itself).
 * Domains, reasons, actors and replies come from the network and from operators, so nothing in ReportData is trusted.
 */

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text made safe for element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => ENTITIES[char] ?? char);
}

/** Markup that is already safe: the only thing `html` interpolates unescaped. */
export class SafeHtml {
  constructor(readonly markup: string) {}

  toString(): string {
    return this.markup;
  }
}

/** Trusted markup as is: only for what the report itself produced (the echarts SVG). */
export function raw(markup: string): SafeHtml {
  return new SafeHtml(markup);
}

export type HtmlValue = SafeHtml | string | number | null | undefined | readonly HtmlValue[];

function interpolate(value: HtmlValue): string {
  if (value === null || value === undefined) return '';
  if (value instanceof SafeHtml) return value.markup;
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return escapeHtml(value);
  return value.map(interpolate).join('');
}

/** A template literal whose strings are escaped, arrays joined and nested `html` fragments kept. */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): SafeHtml {
  let out = strings[0] ?? '';
  values.forEach((value, index) => {
    out += interpolate(value) + (strings[index + 1] ?? '');
  });
  return new SafeHtml(out);
}
