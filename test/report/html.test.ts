import { renderReportHtml } from '../../src/report/html';
import { chainStatement, transmissionStatement } from '../../src/report/summary';
import { outcomesChart } from '../../src/report/charts';
import { count, periodDays } from '../../src/report/format';
import type { ReportData } from '../../src/report/types';
import { brokenChainReport, emptyReport, HOSTILE, hostileReport, reportFrom, sampleReport, SAMPLE_DOMAINS } from './fixtures';

/** The markup of the element with this id (tables, sections, figures: none of them nest their own kind). */
function element(page: string, tag: string, id: string): string {
  const at = page.indexOf(` id="${id}"`);
  expect([id, at >= 0]).toEqual([id, true]);
  const open = page.lastIndexOf(`<${tag} `, at);
  expect(page.slice(open, at)).not.toContain('>');
  const end = page.indexOf(`</${tag}>`, open);
  expect(end).toBeGreaterThan(open);
  return page.slice(open, end);
}

/** The cells of the table row whose attributes include `attributes`, as text (tags stripped, whitespace squeezed). */
function row(table: string, attributes: string): string[] {
  const at = table.indexOf(`<tr ${attributes}>`);
  expect([attributes, at >= 0]).toEqual([attributes, true]);
  const markup = table.slice(at, table.indexOf('</tr>', at));
  return [...markup.matchAll(/<(?:td|th)[^>]*>([\s\S]*?)<\/(?:td|th)>/g)].map((cell) =>
    (cell[1] ?? '')
      .replace(/<[^>]+>/g, ' ')
      .replace(/\s+/g, ' ')
      .trim(),
  );
}

function text(markup: string): string {
  return markup
    .replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

describe('renderReportHtml: the sample week', () => {
  const data = sampleReport();
  const page = renderReportHtml(data);

  it('is one self-contained page: a strict CSP, inline CSS, no script, nothing fetched', () => {
    expect(page.startsWith('<!doctype html>')).toBe(true);
    expect(page).toContain(`<meta http-equiv="Content-Security-Policy" content="default-src &#39;none&#39;; style-src &#39;unsafe-inline&#39;;`);
    expect(page).toContain('<style>');
    expect(page).not.toMatch(/<script/i);
    expect(page).not.toMatch(/<link\b/i);
    expect(page).not.toMatch(/\s(?:src|href)="(?!#)/i);
    expect(page).not.toMatch(/url\(/i);
  });

  it('has the summary and every section, in order', () => {
    const ids = ['summary', 'charts', 'domains', 'diversions', 'portal', 'posture', 'anchors'].map((id) => page.indexOf(`<section class="${id === 'summary' ? 'summary' : 'part'}" id="${id}"`));
    expect(ids.every((at) => at > 0)).toBe(true);
    expect([...ids].sort((a, b) => a - b)).toEqual(ids);
    const summary = text(element(page, 'section', 'summary'));
    expect(summary).toContain('Compliance report');
    expect(summary).toContain('Relay relay.hospital.example');
    expect(summary).toContain('Period 2026-11-02 00:00 UTC to 2026-11-09 00:00 UTC (2026-11-02 to 2026-11-08)');
    expect(summary).toContain('Filters none: all recipients and senders');
    expect(summary).toContain('Generated 2026-11-09 06:00 UTC');
  });

  it('puts the totals by outcome in the summary table', () => {
    const totals = element(page, 'table', 'totals');
    expect(row(totals, 'data-outcome="delivered"')).toEqual(['Delivered over TLS', '69', '71%']);
    expect(row(totals, 'data-outcome="diverted"')).toEqual(['Diverted to the secure portal', '16', '16%']);
    expect(row(totals, 'data-outcome="bounced"')).toEqual(['Bounced', '3', '3%']);
    expect(row(totals, 'data-outcome="deferred"')).toEqual(['Deferred (retried)', '9', '9%']);
    expect(row(totals, 'data-total="messages"')).toEqual(['Messages', String(data.totals.messages), '']);
    expect(row(totals, 'data-total="recipients"')).toEqual(['Recipients', String(data.totals.recipients), '']);
  });

  it('states how the mail left, from the data', () => {
    expect(text(element(page, 'p', 'transmission'))).toBe(
      'Every message that left the relay in this period went over TLS 1.2 or newer (69 deliveries) or was diverted to the secure portal (16); none was sent without TLS. 3 bounced without being sent and 9 deferred for a retry.',
    );
    expect(text(element(page, 'p', 'chain-status'))).toBe(`Evidence chain intact: ${data.chain.records} records checked, 7 sealed days.`);
  });

  it('draws three SVG charts with echarts, labelled', () => {
    expect(page.match(/<svg /g)).toHaveLength(3);
    for (const [id, caption] of [
      ['chart-outcomes', 'Outcomes over time (UTC)'],
      ['chart-tls', 'Deliveries by TLS version'],
      ['chart-diverted', 'Top diverted recipient domains'],
    ]) {
      const figure = element(page, 'figure', id!);
      expect(figure).toContain(`<svg role="img" aria-label="${caption}" width="680"`);
      expect(figure).toContain('</svg>');
    }
    const outcomes = element(page, 'figure', 'chart-outcomes');
    for (const day of ['2026-11-02', '2026-11-08', 'Delivered', 'Diverted', 'Bounced', 'Deferred']) expect(outcomes).toContain(`>${day}</text>`);
    expect(element(page, 'figure', 'chart-tls')).toMatch(/>TLSv1\.3<\/text>[\s\S]*>TLSv1\.2<\/text>/);
    expect(element(page, 'figure', 'chart-diverted')).toMatch(/>legacy\.example<\/text>[\s\S]*>clinic\.example<\/text>[\s\S]*>lab\.example<\/text>/);
  });

  it('gives each recipient domain its outcomes, TLS versions and suites, and policy sources', () => {
    const outcomes = element(page, 'table', 'domains-table');
    const how = element(page, 'table', 'tls-table');
    for (const domain of SAMPLE_DOMAINS) {
      expect(row(outcomes, `data-domain="${domain.domain}"`)).toEqual([domain.domain, ...[domain.messages, domain.delivered, domain.diverted, domain.bounced, domain.deferred].map(String)]);
    }
    expect(row(how, 'data-domain="partner.example"')).toEqual(['partner.example', 'TLSv1.3 TLS_AES_256_GCM_SHA384: 30 TLSv1.3 TLS_AES_128_GCM_SHA256: 12', 'MTA-STS enforce: 45']);
    expect(row(how, 'data-domain="clinic.example"')).toEqual(['clinic.example', 'TLSv1.2 ECDHE-RSA-AES256-GCM-SHA384: 20', 'Default profile: 20 MTA-STS testing: 5']);
    expect(row(how, 'data-domain="lab.example"')).toEqual(['lab.example', 'TLSv1.3 TLS_AES_256_GCM_SHA384: 7', 'DANE: 9']);
    expect(row(how, 'data-domain="legacy.example"')).toEqual(['legacy.example', '–', 'Default profile: 10']);
    expect(row(how, 'data-domain="oldfax.example"')).toEqual(['oldfax.example', '–', 'Domain rule: 8']);
  });

  it('lists diversions by reason and by domain, and certificate problems', () => {
    const reasons = element(page, 'table', 'reasons-table');
    expect(row(reasons, 'data-reason="starttls-not-offered"')).toEqual(['starttls-not-offered', '9']);
    expect(row(reasons, 'data-reason="tls-profile"')).toEqual(['tls-profile', '3']);
    expect(reasons.indexOf('starttls-not-offered')).toBeLessThan(reasons.indexOf('tls-profile'));
    const diverted = element(page, 'table', 'diverted-table');
    expect(row(diverted, 'data-domain="clinic.example" data-reason="certificate-name-mismatch"')).toEqual(['clinic.example', 'certificate-name-mismatch', '2']);
    expect(row(diverted, 'data-domain="lab.example" data-reason="dane-no-match"')).toEqual(['lab.example', 'dane-no-match', '2']);
    const certificates = element(page, 'table', 'certificates-table');
    expect(row(certificates, 'data-domain="lab.example" data-problem="certificate-untrusted"')).toEqual(['lab.example', 'certificate-untrusted', '1']);
    expect(row(certificates, 'data-domain="clinic.example" data-problem="certificate-name-mismatch"')).toEqual(['clinic.example', 'certificate-name-mismatch', '2']);
    expect(certificates).not.toContain('partner.example');
  });

  it('shows portal pickups and admin actions', () => {
    const portal = text(element(page, 'table', 'portal-table'));
    expect(portal).toContain('Stored in the portal 16');
    expect(portal).toContain('Link opened 13');
    expect(portal).toContain('Read (viewed or downloaded) 11');
    expect(portal).toContain('Expired unread 2');
    expect(row(element(page, 'table', 'actions-table'), 'data-action="queue.delete"')).toEqual(['queue.delete', '2']);
    const admin = text(element(page, 'table', 'admin-table'));
    expect(admin).toContain('2026-11-06 11:30 UTC token:privacy-officer portal.withdraw P9K2M4');
  });

  it('puts the current posture beside what was negotiated', () => {
    const posture = element(page, 'table', 'posture-table');
    expect(row(posture, 'data-domain="partner.example"')).toEqual([
      'partner.example',
      '45',
      'deliver mx1.partner.example offers TLSv1.3 with a trusted certificate',
      'MTA-STS enforce',
      'mx1.partner.example: TLSv1.3 TLS_AES_256_GCM_SHA384 (compliant) mx2.partner.example: TLSv1.3 TLS_AES_256_GCM_SHA384 (compliant)',
      'TLSv1.3 TLS_AES_256_GCM_SHA384: 30 TLSv1.3 TLS_AES_128_GCM_SHA256: 12',
    ]);
    expect(row(posture, 'data-domain="legacy.example"')).toEqual(['legacy.example', '10', 'divert starttls-not-offered', 'Default profile', 'smtp.legacy.example: no TLS (not compliant)', '–']);
    expect(row(posture, 'data-domain="oldfax.example"')).toEqual(['oldfax.example', '8', 'check failed DNS lookup for oldfax.example timed out', '–', '–', '–']);
  });

  it('lists the daily anchors and how to check them', () => {
    const anchors = element(page, 'table', 'anchors-table');
    for (const anchor of data.chain.anchors) {
      expect(row(anchors, `data-day="${anchor.day}"`)).toEqual([anchor.day, count(anchor.count), count(anchor.lastSeq), anchor.lastHash, anchor.hash]);
    }
    expect(text(element(page, 'section', 'anchors'))).toContain('sealgate evidence verify --from 2026-11-02 --to 2026-11-08');
  });
});

describe('renderReportHtml: hostile strings', () => {
  const page = renderReportHtml(hostileReport());

  it('escapes every string from the data: no element or attribute comes from it', () => {
    expect(page).not.toMatch(/<script/i);
    expect(page).not.toMatch(/<img/i);
    // No tag carries an event handler outside a quoted (escaped) attribute value.
    const tags = [...page.matchAll(/<[a-z][^>]*>/gi)].map((tag) => tag[0].replace(/"[^"]*"/g, '""'));
    expect(tags.filter((tag) => /\son\w+=/i.test(tag))).toEqual([]);
    expect(page).toContain('&lt;script&gt;alert(&quot;owned&quot;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;');
    // In the summary (relay, filters, chain break), the tables, the posture and the charts' own text.
    const escaped = '&lt;script&gt;';
    for (const id of ['summary', 'domains', 'diversions', 'portal', 'posture']) expect([id, element(page, 'section', id).includes(escaped)]).toEqual([id, true]);
    expect(element(page, 'figure', 'chart-diverted')).toContain(escaped);
  });

  it('keeps the hostile text readable as text', () => {
    expect(text(element(page, 'section', 'summary'))).toContain(`Relay ${HOSTILE.replace(/[<>"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!)}`);
  });
});

describe('renderReportHtml: an empty period', () => {
  const page = renderReportHtml(emptyReport());

  it('says there was no mail, draws no chart, and still renders every section', () => {
    expect(text(element(page, 'p', 'transmission'))).toBe('No mail in this period.');
    expect(page).not.toContain('<svg');
    expect(text(element(page, 'section', 'charts'))).toContain('No outcomes in this period.');
    expect(text(element(page, 'section', 'domains'))).toContain('No mail in this period.');
    expect(text(element(page, 'section', 'diversions'))).toContain('Nothing was diverted in this period.');
    expect(text(element(page, 'section', 'portal'))).toContain('No portal events in this period.');
    expect(text(element(page, 'section', 'portal'))).toContain('No admin actions in this period.');
    expect(text(element(page, 'section', 'posture'))).toContain('Partner posture was not checked for this report.');
    expect(text(element(page, 'section', 'anchors'))).toContain('No sealed days in this period.');
    expect(row(element(page, 'table', 'totals'), 'data-outcome="delivered"')).toEqual(['Delivered over TLS', '0', '–']);
  });
});

describe('renderReportHtml: a broken chain', () => {
  const page = renderReportHtml(brokenChainReport());

  it('shows the break on the summary page and beside the anchors', () => {
    const expected = 'Evidence chain BROKEN: the log was changed after it was written. First break: day 2026-11-04, line 17 (record 61): hash does not match the record.';
    expect(element(page, 'p', 'chain-status')).toContain('class="statement warn"');
    expect(text(element(page, 'p', 'chain-status'))).toContain(expected);
    expect(text(element(page, 'p', 'anchors-status'))).toContain(expected);
    expect(page).not.toContain('Evidence chain intact');
  });
});

describe('the computed statements', () => {
  function withTls(tlsVersions: Record<string, number>): ReportData {
    const data = sampleReport();
    data.tlsVersions = tlsVersions;
    return data;
  }

  it('warns when deliveries lack a TLS 1.2+ session in their evidence', () => {
    expect(transmissionStatement(withTls({ 'TLSv1.3': 49, 'TLSv1.2': 19 }))).toEqual({ tone: 'warn', text: expect.stringMatching(/^1 of 69 deliveries have no TLS 1\.2 or newer session/) as string });
    expect(transmissionStatement(withTls({ 'TLSv1.3': 49, 'TLSv1.2': 10, 'TLSv1.1': 10 })).text).toMatch(/^10 of 69 deliveries/);
  });

  it('names the filters when nothing matched them, and a period where nothing left', () => {
    const filtered = emptyReport();
    filtered.filters = { domain: 'partner.example', sender: '' };
    expect(transmissionStatement(filtered).text).toBe('No mail matching the filters in this period.');
    expect(renderReportHtml(filtered)).toContain('recipient domain partner.example; sender &lt;&gt; (null sender)');
    const stuck = reportFrom([{ ...SAMPLE_DOMAINS[4]! }]);
    expect(transmissionStatement(stuck)).toEqual({ tone: 'ok', text: 'No message left the relay in this period: 2 bounced without being sent and 6 deferred for a retry.' });
  });

  it('says how many records an intact chain covers', () => {
    expect(chainStatement({ ok: true, records: 1, firstBroken: null, anchors: [] }).text).toBe('Evidence chain intact: 1 record checked, 0 sealed days.');
  });
});

describe('chart and format details', () => {
  it('labels hourly buckets with day and hour', () => {
    const svg = outcomesChart([
      { start: '2026-11-02T13:00:00.000Z', delivered: 1, diverted: 0, bounced: 0, deferred: 0 },
      { start: '2026-11-02T14:00:00.000Z', delivered: 0, diverted: 1, bounced: 0, deferred: 0 },
    ]);
    expect(svg).toContain('>11-02 13:00</text>');
    expect(svg).toContain('>11-02 14:00</text>');
  });

  it('names the last day of a period by its exclusive end', () => {
    expect(periodDays({ from: '2026-10-01T00:00:00.000Z', to: '2027-01-01T00:00:00.000Z' })).toEqual({ first: '2026-10-01', last: '2026-12-31' });
    expect(periodDays({ from: '2026-10-01T00:00:00.000Z', to: '2026-10-01T12:00:00.000Z' })).toEqual({ first: '2026-10-01', last: '2026-10-01' });
    expect(count(1234567)).toBe('1,234,567');
  });
});
