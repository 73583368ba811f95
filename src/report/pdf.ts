import { constants as fsConstants } from 'node:fs';
import { access } from 'node:fs/promises';
import type { Browser } from 'playwright-core';
import { escapeHtml } from './escape';
import { renderReportHtml } from './html';
import { periodDays } from './format';
import type { ReportData } from './types';

/*
 * The PDF is the HTML report printed by headless Chromium (print-to-PDF: A4, backgrounds, page X of Y). The page
 * makes no request by construction; the browser blocks every request anyway, and the whole print is bounded in time
 * so a stuck browser fails the report instead of hanging the CLI or the schedule.
 */

export const DEFAULT_CHROMIUM = '/usr/bin/chromium';
export const DEFAULT_PDF_TIMEOUT_MS = 60_000;

/** Switches that keep a headless print quiet: no GPU, no background traffic, no updates. */
const LAUNCH_ARGS = ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export interface PdfOptions {
  /** Chromium's executable; default SEALGATE_CHROMIUM, else /usr/bin/chromium. */
  executablePath?: string;
  /** Bound on launching and printing together. */
  timeoutMs?: number;
}

/** Where Chromium is expected: the option, then SEALGATE_CHROMIUM, then the Debian package's path. */
export function chromiumPath(options: PdfOptions = {}): string {
  return options.executablePath ?? (process.env.SEALGATE_CHROMIUM || DEFAULT_CHROMIUM);
}

function missingChromium(path: string, cause?: unknown): Error {
  // Not `instanceof Error`: errors from node's core can come from another realm (jest's sandbox).
  const message = typeof cause === 'object' && cause !== null && 'message' in cause ? String(cause.message) : '';
  const detail = message ? ` (${message.split('\n')[0]})` : '';
  return new Error(`the PDF report needs headless Chromium, which could not be started from ${path}${detail}: install it (apt-get install chromium) or set SEALGATE_CHROMIUM to its path`);
}

/** The footer Chromium prints on every page: page X of Y and the period. Chromium fills the two spans. */
export function footerTemplate(data: ReportData): string {
  const days = periodDays(data.period);
  const text = escapeHtml(`Sealgate compliance report · ${data.relay} · ${days.first} to ${days.last}`);
  return `<div style="width:100%;margin:0 14mm;font:8px sans-serif;color:#333;display:flex;justify-content:space-between"><span>${text}</span><span>Page <span class="pageNumber"></span> of <span class="totalPages"></span></span></div>`;
}

async function print(browser: Browser, data: ReportData, timeoutMs: number): Promise<Buffer> {
  // No script runs in the report; with JavaScript off a hostile string that slipped through could not run either.
  const context = await browser.newContext({ javaScriptEnabled: false, offline: true });
  const page = await context.newPage();
  page.setDefaultTimeout(timeoutMs);
  await page.route('**', (route) => (route.request().url().startsWith('data:') ? route.continue() : route.abort('blockedbyclient')));
  await page.setContent(renderReportHtml(data), { waitUntil: 'load' });
  const pdf = await page.pdf({
    format: 'A4',
    printBackground: true,
    displayHeaderFooter: true,
    headerTemplate: '<span></span>',
    footerTemplate: footerTemplate(data),
    margin: { top: '14mm', right: '14mm', bottom: '18mm', left: '14mm' },
    tagged: true,
    outline: true,
  });
  await context.close();
  return pdf;
}

/** Rejects after `ms`, unless cleared; the timer does not keep the process alive. */
function deadline(ms: number, what: string): { promise: Promise<never>; clear: () => void } {
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${Math.round(ms / 1000)} s`)), ms);
    timer.unref();
  });
  return { promise, clear: () => clearTimeout(timer) };
}

/** The report as a PDF, printed from its HTML by headless Chromium. The browser is closed whatever happens. */
export async function renderReportPdf(data: ReportData, options: PdfOptions = {}): Promise<Buffer> {
  const executablePath = chromiumPath(options);
  const timeoutMs = options.timeoutMs ?? DEFAULT_PDF_TIMEOUT_MS;
  try {
    await access(executablePath, fsConstants.X_OK);
  } catch (error) {
    throw missingChromium(executablePath, error);
  }
  const args = process.getuid?.() === 0 ? ['--no-sandbox', ...LAUNCH_ARGS] : LAUNCH_ARGS;
  const started = Date.now();
  // Loaded on demand: playwright-core takes seconds to load, which every CLI command and relay start would pay.
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a lazy require keeps playwright unloaded until a PDF is asked for
  const { chromium } = require('playwright-core') as typeof import('playwright-core');
  let browser: Browser;
  try {
    browser = await chromium.launch({ executablePath, headless: true, args, timeout: timeoutMs });
  } catch (error) {
    throw missingChromium(executablePath, error);
  }
  // One bound for launching and printing together.
  const limit = deadline(Math.max(1, timeoutMs - (Date.now() - started)), 'printing the PDF report');
  try {
    return await Promise.race([print(browser, data, timeoutMs), limit.promise]);
  } finally {
    limit.clear();
    await browser.close().catch(() => undefined);
  }
}
