import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromiumPath, DEFAULT_CHROMIUM, footerTemplate, renderReportPdf } from '../../src/report/pdf';
import { hostileReport, sampleReport } from './fixtures';

// No browser here: where Chromium is looked for, what a missing or stuck one gives, and the footer's markup.
// Printing for real is in report.browser.test.ts.

describe('renderReportPdf without a usable Chromium', () => {
  let dir: string;
  const saved = process.env.SEALGATE_CHROMIUM;

  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'report-pdf-'));
  });

  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
    if (saved === undefined) delete process.env.SEALGATE_CHROMIUM;
    else process.env.SEALGATE_CHROMIUM = saved;
  });

  it('looks in SEALGATE_CHROMIUM, else /usr/bin/chromium', () => {
    delete process.env.SEALGATE_CHROMIUM;
    expect(chromiumPath()).toBe(DEFAULT_CHROMIUM);
    process.env.SEALGATE_CHROMIUM = '/opt/chrome/chrome';
    expect(chromiumPath()).toBe('/opt/chrome/chrome');
    expect(chromiumPath({ executablePath: '/x/chromium' })).toBe('/x/chromium');
  });

  it('names the fix when Chromium is missing', async () => {
    process.env.SEALGATE_CHROMIUM = path.join(dir, 'no-such-chromium');
    await expect(renderReportPdf(sampleReport())).rejects.toThrow(
      new RegExp(
        `^the PDF report needs headless Chromium, which could not be started from ${dir}/no-such-chromium .*: install it \\(apt-get install chromium\\) or set SEALGATE_CHROMIUM to its path$`,
      ),
    );
  });

  it('gives up on a Chromium that never answers, within its bound', async () => {
    // A "browser" that never speaks the protocol; it records its PID so the test ends it (the launcher would only
    // kill it after its own 30 s close timeout).
    const stuck = path.join(dir, 'stuck-chromium');
    const pidFile = path.join(dir, 'stuck.pid');
    writeFileSync(stuck, `#!/bin/sh\necho $$ > ${pidFile}\nexec sleep 25\n`);
    chmodSync(stuck, 0o755);
    const started = Date.now();
    try {
      await expect(renderReportPdf(sampleReport(), { executablePath: stuck, timeoutMs: 1500 })).rejects.toThrow(/could not be started from .*stuck-chromium .*Timeout.*apt-get install chromium/);
      // Well before the stuck process would have ended by itself.
      expect(Date.now() - started).toBeLessThan(20_000);
    } finally {
      const pid = Number(readFileSync(pidFile, 'utf8'));
      if (pid > 0) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  });
});

describe('the PDF footer', () => {
  it('prints page X of Y and the period', () => {
    const footer = footerTemplate(sampleReport());
    expect(footer).toContain('Sealgate compliance report · relay.hospital.example · 2026-11-02 to 2026-11-08');
    expect(footer).toContain('Page <span class="pageNumber"></span> of <span class="totalPages"></span>');
  });

  it('escapes the relay name', () => {
    const footer = footerTemplate(hostileReport());
    expect(footer).not.toContain('<script');
    expect(footer).toContain('&lt;script&gt;');
  });
});
