import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { renderReportHtml } from '../../src/report/html';
import { renderReportPdf } from '../../src/report/pdf';
import type { ReportData } from '../../src/report/types';
import { hostileReport, reportFrom, sampleReport, SAMPLE_DOMAINS } from './fixtures';

// The auditor's report in a real browser: the HTML loads clean (no console error, no page error, no request), its
// charts have a size, and the PDF Chromium prints from it has the expected pages and text (read back with poppler).

const LAUNCH_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

interface PageLog {
  console: string[];
  errors: string[];
  requests: string[];
  failed: string[];
  dialogs: string[];
}

function watch(page: Page): PageLog {
  const log: PageLog = { console: [], errors: [], requests: [], failed: [], dialogs: [] };
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') log.console.push(`${message.type()}: ${message.text()}`);
  });
  page.on('pageerror', (error) => log.errors.push(error.message));
  page.on('request', (request) => log.requests.push(request.url()));
  page.on('requestfailed', (request) => log.failed.push(request.url()));
  page.on('dialog', (dialog) => {
    log.dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  return log;
}

/** The PDF's page count and its text (whitespace squeezed), per page and whole, from pdfinfo and pdftotext. */
function readPdf(file: string): { pages: number; text: string; page: (n: number) => string } {
  const info = execFileSync('pdfinfo', [file], { encoding: 'utf8' });
  const pages = Number(/^Pages:\s+(\d+)$/m.exec(info)?.[1]);
  const extract = (...range: string[]): string => execFileSync('pdftotext', ['-layout', ...range, file, '-'], { encoding: 'utf8' }).replace(/\s+/g, ' ');
  return { pages, text: extract(), page: (n) => extract('-f', String(n), '-l', String(n)) };
}

describe('the report in headless Chromium', () => {
  let browser: Browser;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'report-browser-'));
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: LAUNCH_ARGS });
  });

  afterAll(async () => {
    await browser?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function load(data: ReportData): Promise<{ page: Page; log: PageLog }> {
    const page = await browser.newPage();
    const log = watch(page);
    await page.setContent(renderReportHtml(data), { waitUntil: 'load' });
    return { page, log };
  }

  it('loads with no console error, no page error and no request; the charts have a size', async () => {
    const { page, log } = await load(sampleReport());
    try {
      expect(log).toEqual({ console: [], errors: [], requests: [], failed: [], dialogs: [] });
      const charts = await page.$$eval('figure.chart svg', (svgs) => svgs.map((svg) => ({ width: svg.getBoundingClientRect().width, height: svg.getBoundingClientRect().height })));
      expect(charts).toHaveLength(3);
      for (const size of charts) {
        expect(size.width).toBeGreaterThan(300);
        expect(size.height).toBeGreaterThan(80);
      }
      expect(await page.title()).toBe('Sealgate compliance report · relay.hospital.example · 2026-11-02 00:00 UTC to 2026-11-09 00:00 UTC');
      // Printed, the summary stands alone and each section starts a page.
      await page.emulateMedia({ media: 'print' });
      // (Evaluated as text: the project's TypeScript has no DOM lib.)
      expect(await page.evaluate<string>(`getComputedStyle(document.querySelector('#summary')).breakAfter`)).toBe('page');
      expect(await page.evaluate<string[]>(`[...document.querySelectorAll('section.part')].map((element) => getComputedStyle(element).breakBefore)`)).toEqual(Array(6).fill('page'));
    } finally {
      await page.close();
    }
  });

  it('keeps hostile strings inert: no script runs, no element is injected', async () => {
    const { page, log } = await load(hostileReport());
    try {
      expect(log).toEqual({ console: [], errors: [], requests: [], failed: [], dialogs: [] });
      expect(await page.$$eval('script, img, iframe, object', (elements) => elements.length)).toBe(0);
      expect(await page.textContent('#summary dd')).toBe('<script>alert("owned")</script><img src=x onerror=alert(1)>');
    } finally {
      await page.close();
    }
  });

  it('prints the sample week to a PDF with the summary, the totals, every domain and the chain status', async () => {
    const data = sampleReport();
    const pdf = await renderReportPdf(data);
    expect(pdf.subarray(0, 5).toString('latin1')).toBe('%PDF-');
    const file = path.join(dir, 'sample.pdf');
    writeFileSync(file, pdf);
    const { pages, text, page } = readPdf(file);
    // Summary, charts, domains, diversions, portal and admin, posture, anchors: one page each at this size.
    expect(pages).toBeGreaterThanOrEqual(7);
    expect(pages).toBeLessThanOrEqual(10);
    const first = page(1);
    expect(first).toContain('Compliance report');
    expect(first).toContain('relay.hospital.example');
    expect(first).toMatch(/Delivered over TLS 69 71%/);
    expect(first).toMatch(/Diverted to the secure portal 16 16%/);
    expect(first).toMatch(/Bounced 3 3%/);
    expect(first).toMatch(/Deferred \(retried\) 9 9%/);
    expect(first).toContain(`Evidence chain intact: ${data.chain.records} records checked, 7 sealed days.`);
    expect(first).toContain(`Page 1 of ${pages}`);
    expect(first).not.toContain('Outcomes over time');
    expect(page(2)).toContain('Outcomes over time');
    for (const domain of SAMPLE_DOMAINS) expect(text).toContain(domain.domain);
    expect(text).toContain('sealgate evidence verify --from 2026-11-02 --to 2026-11-08');
    expect(text).toContain(data.chain.anchors[0]!.day);
  });

  it('repeats table headers on every page a long table spans', async () => {
    // 120 partners: the domain tables run over several pages. (The empty period's wording is checked in html.test.ts.)
    const domains = Array.from({ length: 120 }, (_, n) => ({ ...structuredClone(SAMPLE_DOMAINS[0]!), domain: `partner${String(n).padStart(3, '0')}.example` }));
    const file = path.join(dir, 'long.pdf');
    writeFileSync(file, await renderReportPdf(reportFrom(domains)));
    const { pages, page } = readPdf(file);
    const spanned = Array.from({ length: pages }, (_, n) => page(n + 1)).filter((text) => /partner\d{3}\.example \d+ \d+ \d+ \d+ \d+ /.test(text));
    expect(spanned.length).toBeGreaterThanOrEqual(3);
    for (const text of spanned) expect(text).toContain('Domain Messages Delivered Diverted Bounced Deferred');
    expect(page(pages)).toContain('Page ' + String(pages) + ' of ' + String(pages));
  });
});
