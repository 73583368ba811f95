import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startPortalServer } from '../../../src/portal/web';
import { selfSignedCertificate } from '../../support/certificates';
import { makeWorld, sampleMessage, type World } from '../web/fakes';

// axe-core's whole source, evaluated in the page (CDP evaluation is not subject to the page's CSP, which
// forbids inline scripts, so addScriptTag({content}) would be blocked).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const AXE_SOURCE = (require('axe-core') as { source: string }).source;
const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'];
const LAUNCH_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

interface AxeResult {
  violations: { id: string; impact: string; nodes: { target: string[] }[] }[];
  passes: unknown[];
}

/** Opens a link, asks for an email code, types the code the notice sender recorded, and lands on the message. */
async function signIn(page: Page, baseUrl: string, token: string, code: () => string): Promise<void> {
  await page.goto(`${baseUrl}/m/${token}`);
  await page.click('button:has-text("Continue")');
  await page.click('button:has-text("Email me a code")');
  await page.fill('#code', code());
  await page.click('button:has-text("Sign in")');
  await page.waitForURL(`${baseUrl}/message`);
}

describe('portal in headless Chromium', () => {
  let browser: Browser;
  let world: World;
  let server: Awaited<ReturnType<typeof startPortalServer>>;
  let shots: string;
  const keepShots = process.env.PORTAL_SCREENSHOTS;
  const axeLog: { page: string; violations: number; passes: number }[] = [];

  beforeAll(async () => {
    shots = keepShots ?? mkdtempSync(path.join(os.tmpdir(), 'portal-shots-'));
    const tls = await selfSignedCertificate('localhost');
    world = makeWorld({ tls, realClock: true });
    server = await startPortalServer(world.deps);
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: LAUNCH_ARGS });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (!keepShots && shots) rmSync(shots, { recursive: true, force: true });
    if (process.env.PORTAL_AXE_LOG) console.log(JSON.stringify(axeLog));
  });

  async function newContext(options: Parameters<Browser['newContext']>[0] = {}): Promise<BrowserContext> {
    return browser.newContext({ ignoreHTTPSErrors: true, acceptDownloads: true, ...options });
  }

  /** Every request the page makes, to prove nothing leaves the portal's origin. */
  function watchRequests(page: Page): string[] {
    const urls: string[] = [];
    page.on('request', (request) => urls.push(request.url()));
    return urls;
  }

  function foreign(urls: string[]): string[] {
    return urls.filter((url) => !url.startsWith(`${server.url}/`) && !url.startsWith('data:'));
  }

  async function axe(page: Page, name: string): Promise<void> {
    await page.evaluate(AXE_SOURCE);
    const result = await page.evaluate<AxeResult>(`axe.run(document, { runOnly: { type: 'tag', values: ${JSON.stringify(AXE_TAGS)} } })`);
    axeLog.push({ page: name, violations: result.violations.length, passes: result.passes.length });
    expect([name, result.violations.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)]).toEqual([name, []]);
  }

  async function shot(page: Page, name: string): Promise<void> {
    // A full-page screenshot of a scrolled page can leave an off-screen iframe unpainted.
    await page.evaluate('window.scrollTo(0, 0)');
    await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
  }

  async function check(page: Page, name: string): Promise<void> {
    await axe(page, name);
    await shot(page, name);
    // Readable without horizontal scrolling.
    const overflow = await page.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth');
    expect([name, overflow]).toEqual([name, 0]);
  }

  /**
   * Follows a link by focus + Enter. A mouse click right after the message page loads is sometimes dropped by
   * the automation (no request at all); the keyboard path is what the keyboard-only test proves anyway.
   */
  async function activate(page: Page, selector: string): Promise<void> {
    await page.focus(selector);
    await page.keyboard.press('Enter');
  }

  const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

  test('link → code by email → message → attachment download, axe-clean on every page, nothing from other origins', async () => {
    const pdf = Buffer.concat([Buffer.from('%PDF-1.4\n'), Buffer.alloc(70_000, 7), Buffer.from('\n%%EOF\n')]);
    const { item, token } = world.copies.add({ body: sampleMessage({ attachment: pdf, attachmentName: 'results.pdf' }) });
    const context = await newContext();
    const page = await context.newPage();
    const requests = watchRequests(page);

    // Clicked from another site (the mail client): the Strict cookie may not come along on the redirect.
    await page.setContent(`<a id="mail-link" href="${server.url}/m/${token}">Open</a>`);
    await page.click('#mail-link');
    await page.waitForURL(`${server.url}/open`);
    if ((await page.locator('h1').textContent()) === 'Open your secure message') {
      await check(page, '01-continue');
      await page.click('text=Continue');
      await page.waitForURL(`${server.url}/open`);
    }
    expect(await page.locator('h1').textContent()).toBe('You have a secure message');
    expect(await page.content()).toContain('d***@partner.example');
    expect(await page.content()).not.toContain('Your lab results');
    await check(page, '02-open');

    await page.click('button:has-text("Continue")');
    await page.waitForURL(`${server.url}/verify`);
    await check(page, '03-verify');
    await page.click('button:has-text("Email me a code")');
    await page.waitForURL(`${server.url}/verify?sent=1`);
    await check(page, '04-enter-code');
    await page.fill('#code', world.notices.lastCode(item.id));
    await page.click('button:has-text("Sign in")');
    await page.waitForURL(`${server.url}/message`);
    expect(await page.locator('h1').textContent()).toBe('Your lab results');
    const [download] = await Promise.all([page.waitForEvent('download'), activate(page, 'a[href^="/message/attachments/"]')]);
    expect(download.suggestedFilename()).toBe('results.pdf');
    expect(sha256(readFileSync(await download.path()))).toBe(sha256(pdf));
    const [eml] = await Promise.all([page.waitForEvent('download'), page.click('a[href="/message/eml"]')]);
    expect(eml.suggestedFilename()).toBe('message.eml');
    await expect(page.frameLocator('iframe.content').locator('b').textContent()).resolves.toBe('Dana');
    await check(page, '05-message');

    await activate(page, 'button:has-text("Sign out")');
    await page.waitForURL(`${server.url}/signed-out`);
    await check(page, '06-signed-out');

    expect(foreign(requests)).toEqual([]);
    expect(world.copies.events(item.id).map((e) => e.type)).toEqual(['link.prefetch', 'link.opened', 'otp.sent', 'auth.success', 'message.viewed', 'attachment.downloaded', 'message.downloaded']);
    await context.close();
  });

  test('a scanner GETs and HEADs the link first; the person still succeeds', async () => {
    const { item, token } = world.copies.add({ body: sampleMessage() });
    const scanner = await newContext({ userAgent: 'LinkScanner/1.0' });
    const head = await scanner.request.fetch(`${server.url}/m/${token}`, { method: 'HEAD', maxRedirects: 0 });
    expect(head.status()).toBe(303);
    const scanPage = await scanner.newPage();
    await scanPage.goto(`${server.url}/m/${token}`);
    expect(await scanPage.locator('h1').textContent()).toBe('You have a secure message');
    await scanner.close();
    expect(world.copies.events(item.id, 'link.prefetch')).toHaveLength(2);
    expect(world.copies.items.get(item.id)!.state).toBe('notified');

    const person = await newContext();
    const page = await person.newPage();
    await signIn(page, server.url, token, () => world.notices.lastCode(item.id));
    expect(world.copies.events(item.id, 'auth.success')).toHaveLength(1);
    const [dl] = await Promise.all([page.waitForEvent('download'), activate(page, 'a[href^="/message/attachments/"]')]);
    expect(dl.suggestedFilename()).toBe('results.pdf');
    await person.close();
  });

  test('keyboard only: Tab, Enter and typing carry the whole flow', async () => {
    const pdf = Buffer.from('%PDF-1.4 keyboard\n');
    const { item, token } = world.copies.add({ body: sampleMessage({ attachment: pdf }) });
    const context = await newContext();
    const page = await context.newPage();

    /** Presses Tab until the focused element's text or label matches, then returns. */
    async function tabTo(match: RegExp): Promise<void> {
      for (let i = 0; i < 25; i++) {
        await page.keyboard.press('Tab');
        const focused = String(
          await page.evaluate(`(() => {
            const el = document.activeElement;
            if (!el) return '';
            const label = el.id ? document.querySelector('label[for="' + el.id + '"]')?.textContent : '';
            return (el.tagName + ' ' + (el.textContent ?? '') + ' ' + (label ?? '')).trim();
          })()`),
        );
        if (match.test(focused)) {
          // Focus is visible: the focused control has an outline.
          const outline = await page.evaluate('getComputedStyle(document.activeElement).outlineStyle');
          expect(outline).not.toBe('none');
          return;
        }
      }
      throw new Error(`Tab never reached ${match}`);
    }

    await page.goto(`${server.url}/m/${token}`);
    await tabTo(/^BUTTON Continue/);
    await page.keyboard.press('Enter');
    await page.waitForURL(`${server.url}/verify`);
    await tabTo(/Email me a code/);
    await page.keyboard.press('Enter');
    await page.waitForURL(`${server.url}/verify?sent=1`);
    await tabTo(/^INPUT.*Code from the email/);
    await page.keyboard.type(world.notices.lastCode(item.id));
    await page.keyboard.press('Enter');
    await page.waitForURL(`${server.url}/message`);
    await tabTo(/^A results\.pdf/);
    const [download] = await Promise.all([page.waitForEvent('download'), page.keyboard.press('Enter')]);
    expect(sha256(readFileSync(await download.path()))).toBe(sha256(pdf));
    await context.close();
  });

  test('a 320 px phone viewport: every page fits, code entry works', async () => {
    const { item, token } = world.copies.add({ body: sampleMessage({ subject: 'A rather long subject line that has to wrap on a small phone screen' }) });
    const context = await newContext({ viewport: { width: 320, height: 640 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    const page = await context.newPage();
    await page.goto(`${server.url}/m/${token}`);
    await check(page, '10-phone-open');
    await page.tap('button:has-text("Continue")');
    await page.waitForURL(`${server.url}/verify`);
    await page.tap('button:has-text("Email me a code")');
    await page.waitForURL(`${server.url}/verify?sent=1`);
    await check(page, '11-phone-code');
    await page.fill('#code', world.notices.lastCode(item.id));
    await page.tap('button:has-text("Sign in")');
    await page.waitForURL(`${server.url}/message`);
    await check(page, '12-phone-message');
    await context.close();
  });

  test('hostile HTML: no request leaves the portal origin and no script runs', async () => {
    const hostile = [
      '<script>document.title="pwned";parent.document.title="pwned"</script>',
      '<p id="x" style="background-image:url(http://127.0.0.2:9/css)">Hostile but harmless</p>',
      '<img src="http://127.0.0.2:9/x" alt="tracker">',
      '<form action="http://127.0.0.2:9/form" method="post"><input name="q"><button>Go</button></form>',
      '<style>body{background:url(http://127.0.0.2:9/style)}</style>',
      '<img src="x" onerror="parent.document.title=\'pwned\'">',
      '<svg><script>parent.document.title="pwned"</script></svg>',
    ].join('');
    const { item, token } = world.copies.add({ body: sampleMessage({ html: hostile }) });
    const context = await newContext();
    const page = await context.newPage();
    const requests = watchRequests(page);
    await signIn(page, server.url, token, () => world.notices.lastCode(item.id));
    // (A frameLocator query makes Playwright drop the next click on the main page: keep frame checks after clicks.)
    const frame = page.frameLocator('iframe.content');
    await expect(frame.locator('#x, p').first().textContent()).resolves.toBe('Hostile but harmless');
    await page.waitForLoadState('networkidle');
    await expect(page.locator('.note').textContent()).resolves.toContain('Pictures from other websites are not shown');
    await shot(page, '20-hostile-message');
    expect(await page.title()).not.toContain('pwned');
    const inner = page.frames().find((f) => f.url().endsWith('/message/html'))!;
    expect(await inner.title()).toBe('Message');
    expect(await inner.locator('form, script, style:not(head style), input').count()).toBe(0);
    expect(foreign(requests)).toEqual([]);
    await context.close();
  });

  test('the idle warning shows in the page, then the session ends (server-enforced too)', async () => {
    const short = makeWorld({ tls: await selfSignedCertificate('localhost'), realClock: true, portal: { sessionIdle: '4s' } });
    const shortServer = await startPortalServer(short.deps);
    const context = await newContext();
    try {
      const page = await context.newPage();
      const { item, token } = short.copies.add({ body: sampleMessage() });
      await signIn(page, shortServer.url, token, () => short.notices.lastCode(item.id));
      await page.waitForSelector('.session.warn', { timeout: 3500 });
      expect(await page.locator('#session-text').textContent()).toContain('You will soon be signed out');
      await shot(page, '07-idle-warning');
      await page.waitForURL(`${shortServer.url}/signed-out`, { timeout: 5000 });
      const again = await page.goto(`${shortServer.url}/message`);
      expect(again!.status()).toBe(401);
    } finally {
      await context.close();
      await shortServer.close();
    }
  });

  test('friendly pages: expired, withdrawn mid-session (410), unknown link, lockout', async () => {
    const context = await newContext();
    const page = await context.newPage();

    const expired = world.copies.add({ body: sampleMessage() });
    world.copies.shred(expired.item.id, 'expired');
    const res = await page.goto(`${server.url}/m/${expired.token}`);
    expect(res!.status()).toBe(410);
    expect(await page.locator('h1').textContent()).toBe('This message has expired');
    await check(page, '30-expired');

    const unknown = await page.goto(`${server.url}/m/${'A'.repeat(43)}`);
    expect(unknown!.status()).toBe(404);
    await check(page, '31-not-found');

    const live = world.copies.add({ body: sampleMessage() });
    await signIn(page, server.url, live.token, () => world.notices.lastCode(live.item.id));
    await world.copies.update(live.item.id, (i) => ({ ...i, state: 'revoked', revokedFrom: i.state }));
    const revoked = await page.reload();
    expect(revoked!.status()).toBe(410);
    expect(await page.locator('h1').textContent()).toBe('This message has been withdrawn');
    await check(page, '32-withdrawn');

    const locked = world.copies.add({ body: sampleMessage() });
    await page.goto(`${server.url}/m/${locked.token}`);
    await page.click('button:has-text("Continue")');
    for (let round = 0; round < 2; round++) {
      // After five wrong tries the code is gone, so the page offers a first code again.
      await page.click('button:has-text("Email me a code")');
      const wrong = world.notices.lastCode(locked.item.id) === '00000000' ? '11111111' : '00000000';
      for (let i = 0; i < 5; i++) {
        await page.fill('#code', wrong);
        await page.click('button:has-text("Sign in")');
        if (round === 0 && i === 0) await check(page, '33-wrong-code');
        if (round === 1 && i === 4) break;
      }
    }
    expect(await page.locator('h1').textContent()).toBe('Sign-in is paused');
    await check(page, '34-locked');
    expect(world.notices.sent.some((n) => n.kind === 'otp-locked' && n.itemId === locked.item.id)).toBe(true);
    await context.close();
  });
});
