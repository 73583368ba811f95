import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { hashPassword } from '../../../src/auth/users';
import { buildPortalApp, COOKIES, MESSAGE_FRAME_CSP } from '../../../src/portal/web';
import { Agent } from './agent';
import { makeWorld, sampleMessage, type World } from './fakes';

function expectSecurityHeaders(res: LightMyRequestResponse, frame = false): void {
  expect(res.headers['strict-transport-security']).toMatch(/max-age=\d{7,}/);
  expect(res.headers['content-security-policy']).toContain(frame ? "frame-ancestors 'self'" : "frame-ancestors 'none'");
  expect(res.headers['referrer-policy']).toBe('no-referrer');
  expect(res.headers['x-content-type-options']).toBe('nosniff');
  expect(res.headers['cache-control']).toBe('no-store');
}

describe('portal web app', () => {
  let world: World;
  let app: FastifyInstance;

  async function setup(opts: Parameters<typeof makeWorld>[0] = {}): Promise<void> {
    world = makeWorld(opts);
    app = await buildPortalApp(world.deps);
  }
  afterEach(async () => {
    await app?.close();
  });

  async function signedIn(agent: Agent, token: string): Promise<void> {
    await agent.open(token);
    await agent.requestCode();
    const res = await agent.post('/otp/verify', { code: world.notices.lastCode() });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/message');
  }

  test('GET and HEAD of the link never change state: only link.prefetch, the token still works', async () => {
    await setup();
    const { item, token } = world.copies.add({ body: sampleMessage() });
    const scanner = new Agent(app, { 'user-agent': 'SafeLinks/1.0' });
    for (const method of ['GET', 'HEAD'] as const) {
      const res = await scanner.get(`/m/${token}`, { method });
      expect(res.statusCode).toBe(303);
      expect(res.headers.location).toBe('/open');
      expectSecurityHeaders(res);
      const set = String(res.headers['set-cookie']);
      expect(set).toContain(`${COOKIES.link}=`);
      expect(set).toMatch(/HttpOnly/);
      expect(set).toMatch(/Secure/);
      expect(set).toMatch(/SameSite=Strict/);
      expect(set).toMatch(/Path=\//);
    }
    // GET /open renders, still no state change.
    const open = await scanner.get('/open');
    expect(open.statusCode).toBe(200);
    expect(open.body).toContain('d***@partner.example');
    expect(open.body).not.toContain('secret subject');
    expect(open.body).not.toContain('Your lab results');
    expect(open.body).not.toContain('doctor@clinic.example');
    expect(world.copies.items.get(item.id)!.state).toBe('notified');
    expect(world.copies.items.get(item.id)!.version).toBe(1);
    expect(world.cache.entries.size).toBe(0);
    const prefetch = world.copies.events(item.id, 'link.prefetch');
    expect(prefetch).toHaveLength(2);
    expect(prefetch[0]).toMatchObject({ actor: 'recipient', ip: '127.0.0.1', uaHash: expect.stringMatching(/^[0-9a-f]{16}$/) });
    expect(world.copies.events(item.id, 'link.opened')).toHaveLength(0);

    // The person afterwards, in another browser, succeeds.
    const person = new Agent(app);
    await signedIn(person, token);
    expect((await person.get('/message')).statusCode).toBe(200);
  });

  test('POST /open records link.opened, moves the item to opened, and needs the CSRF token', async () => {
    await setup();
    const { item, token } = world.copies.add({ body: sampleMessage() });
    const agent = new Agent(app);
    await agent.get(`/m/${token}`);
    await agent.get('/open');
    const refused = await agent.post('/open', {}, { csrf: null });
    expect(refused.statusCode).toBe(403);
    expectSecurityHeaders(refused);
    const forged = await agent.post('/open', {}, { csrf: 'forged-token' });
    expect(forged.statusCode).toBe(403);
    expect(world.copies.items.get(item.id)!.state).toBe('notified');
    const res = await agent.post('/open');
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/verify');
    expect(world.copies.items.get(item.id)!.state).toBe('opened');
    expect(world.copies.events(item.id, 'link.opened')).toHaveLength(1);
    expect(agent.cookies.has(COOKIES.preauth)).toBe(true);
    expect(agent.cookies.has(COOKIES.link)).toBe(false);
  });

  test('/open without the link cookie (Strict cookie after a cross-site redirect) offers a same-site Continue link', async () => {
    await setup();
    const agent = new Agent(app);
    const res = await agent.get('/open');
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('href="/open"');
    const again = await agent.get('/open?c=1');
    expect(again.statusCode).toBe(401);
    expect(again.body).toContain('Please start again');
  });

  test('every CSRF-protected POST refuses a missing token', async () => {
    await setup();
    const { token } = world.copies.add({ body: sampleMessage() });
    const agent = new Agent(app);
    await signedIn(agent, token);
    for (const url of ['/open', '/otp/send', '/otp/verify', '/secret', '/session/extend', '/signout']) {
      const res = await agent.post(url, { code: '00000000' }, { csrf: null });
      expect([url, res.statusCode]).toEqual([url, 403]);
    }
  });

  test('a correct code signs in once; the message view records message.viewed and moves the item to read', async () => {
    await setup();
    const { item, token } = world.copies.add({ body: sampleMessage() });
    const agent = new Agent(app);
    await agent.open(token);
    const before = agent.last!;
    expect(before.body).toContain('Email me a code');
    expect(before.body).not.toContain('Your lab results');
    await agent.requestCode();
    const page = agent.last!;
    expect(page.body).toContain('autocomplete="one-time-code"');
    expect(page.body).toContain('inputmode="numeric"');
    const notice = world.notices.sent[0]!;
    expect(notice).toMatchObject({ kind: 'otp-code', itemId: item.id, to: 'dana@partner.example', validForMs: 600_000 });
    const code = world.notices.lastCode();
    expect(code).toMatch(/^\d{8}$/);
    // The code is stored only as a hash.
    expect([...world.cache.entries.values()].some((e) => e.value.includes(code))).toBe(false);
    expect(world.copies.events(item.id, 'otp.sent')).toHaveLength(1);

    const ok = await agent.post('/otp/verify', { code });
    expect(ok.statusCode).toBe(303);
    const set = String(ok.headers['set-cookie']);
    expect(set).toMatch(new RegExp(`${COOKIES.session}=[^;]+; Path=/; HttpOnly; Secure; SameSite=Strict`));
    expect(world.copies.events(item.id, 'auth.success')[0]!.detail).toEqual({ method: 'email-otp' });

    const view = await agent.get('/message');
    expect(view.statusCode).toBe(200);
    expectSecurityHeaders(view);
    expect(view.body).toContain('Your lab results');
    expect(view.body).toContain('doctor@clinic.example');
    expect(view.body).toContain('results.pdf');
    expect(view.body).toContain('sandbox="allow-popups allow-popups-to-escape-sandbox"');
    expect(world.copies.items.get(item.id)!.state).toBe('read');
    expect(world.copies.events(item.id, 'message.viewed')).toHaveLength(1);

    // Single use: the same code from a new pre-auth is refused.
    const other = new Agent(app);
    await other.open(token);
    expect((await other.post('/otp/verify', { code })).statusCode).toBe(400);
  });

  test('five wrong codes burn the code; the right code afterwards is refused', async () => {
    await setup();
    const { item, token } = world.copies.add({ body: sampleMessage() });
    const agent = new Agent(app);
    await agent.open(token);
    await agent.requestCode();
    const code = world.notices.lastCode();
    const wrong = code === '00000000' ? '11111111' : '00000000';
    for (let i = 0; i < 5; i++) expect((await agent.post('/otp/verify', { code: wrong })).statusCode).toBe(400);
    const late = await agent.post('/otp/verify', { code });
    expect(late.statusCode).toBe(400);
    expect(late.body).toContain('ask for a new code');
    expect(world.copies.events(item.id, 'otp.failed')).toHaveLength(6);
    expect(world.copies.events(item.id, 'auth.success')).toHaveLength(0);
  });

  test('a code expires after 10 minutes (injectable clock)', async () => {
    await setup();
    const { token } = world.copies.add({ body: sampleMessage() });
    const agent = new Agent(app);
    await agent.open(token);
    await agent.requestCode();
    const code = world.notices.lastCode();
    world.clock.advance(10 * 60_000 + 1);
    const res = await agent.post('/otp/verify', { code });
    expect(res.statusCode).toBe(400);
    expect(res.body).toMatch(/expired|no valid code/);
  });

  test('a code requested in one browser is refused in another', async () => {
    await setup();
    const { item, token } = world.copies.add({ body: sampleMessage() });
    const a = new Agent(app);
    const b = new Agent(app);
    await a.open(token);
    await b.open(token);
    await a.requestCode();
    const code = world.notices.lastCode();
    expect((await b.post('/otp/verify', { code })).statusCode).toBe(400);
    expect(world.copies.events(item.id, 'auth.success')).toHaveLength(0);
    expect((await a.post('/otp/verify', { code })).statusCode).toBe(303);
  });

  test('at most 3 codes per hour per item', async () => {
    await setup();
    const { token } = world.copies.add({ body: sampleMessage() });
    const agent = new Agent(app);
    await agent.open(token);
    for (let i = 0; i < 3; i++) expect((await agent.requestCode()).statusCode).toBe(303);
    const fourth = await agent.post('/otp/send');
    expect(fourth.statusCode).toBe(429);
    expect(fourth.body).toContain('3 codes in the last hour');
    expect(world.notices.sent).toHaveLength(3);
    world.clock.advance(3_600_000 + 1);
    await agent.open(token);
    expect((await agent.requestCode()).statusCode).toBe(303);
  });

  test('repeated failures lock the item with a growing delay; the recipient is told', async () => {
    await setup();
    const { item, token } = world.copies.add({ body: sampleMessage() });
    const lockOnce = async (): Promise<number> => {
      const agent = new Agent(app);
      await agent.open(token);
      let res: LightMyRequestResponse | undefined;
      for (let round = 0; round < 2; round++) {
        await agent.requestCode();
        const wrong = world.notices.lastCode() === '00000000' ? '11111111' : '00000000';
        for (let i = 0; i < 5; i++) res = await agent.post('/otp/verify', { code: wrong });
      }
      expect(res!.statusCode).toBe(429);
      expect(res!.body).toContain('paused until');
      const locked = world.notices.sent.filter((n) => n.kind === 'otp-locked').at(-1);
      expect(locked).toMatchObject({ kind: 'otp-locked', itemId: item.id, to: 'dana@partner.example' });
      return (locked as { until: number }).until - world.clock.now();
    };
    const first = await lockOnce();
    expect(first).toBe(15 * 60_000);
    expect(world.copies.events(item.id, 'otp.locked')).toHaveLength(1);
    // While locked, even a fresh browser cannot ask for a code.
    const probe = new Agent(app);
    await probe.open(token);
    expect(probe.last!.statusCode).toBe(429);
    expect((await probe.post('/otp/send')).statusCode).toBe(429);
    world.clock.advance(first + 1);
    world.clock.advance(3_600_000); // the per-hour code quota refills
    const second = await lockOnce();
    expect(second).toBe(30 * 60_000);
  });

  test('secret method: scrypt passphrase, wrong one refused', async () => {
    await setup();
    const { item, token } = world.copies.add({ body: sampleMessage(), auth: { methods: ['secret'], secretHash: await hashPassword('correct horse battery') } });
    const agent = new Agent(app);
    await agent.open(token);
    expect(agent.last!.body).toContain('Passphrase');
    expect(agent.last!.body).not.toContain('Email me a code');
    expect((await agent.post('/otp/send')).statusCode).toBe(400);
    expect((await agent.post('/secret', { passphrase: 'wrong' })).statusCode).toBe(400);
    const ok = await agent.post('/secret', { passphrase: 'correct horse battery' });
    expect(ok.statusCode).toBe(303);
    expect(world.copies.events(item.id, 'auth.success')[0]!.detail).toEqual({ method: 'secret' });
  });

  test('session idle timeout, extension, and the hard cap', async () => {
    await setup({ portal: { sessionIdle: '15m', sessionMax: '1h' } });
    const { token } = world.copies.add({ body: sampleMessage() });
    const agent = new Agent(app);
    await signedIn(agent, token);
    expect((await agent.get('/message')).statusCode).toBe(200);
    world.clock.advance(14 * 60_000);
    expect((await agent.post('/session/extend')).statusCode).toBe(303);
    world.clock.advance(14 * 60_000);
    expect((await agent.get('/message')).statusCode).toBe(200);
    world.clock.advance(15 * 60_000);
    const idle = await agent.get('/message');
    expect(idle.statusCode).toBe(401);
    expect(idle.body).toContain('You are signed out');

    const capped = new Agent(app);
    await signedIn(capped, token);
    for (let i = 0; i < 4; i++) {
      world.clock.advance(14 * 60_000);
      expect((await capped.get('/message')).statusCode).toBe(200);
    }
    world.clock.advance(5 * 60_000); // 61 minutes after sign-in
    expect((await capped.get('/message')).statusCode).toBe(401);
  });

  test('revoked mid-session gives 410 with the friendly page', async () => {
    await setup();
    const { item, token } = world.copies.add({ body: sampleMessage() });
    const agent = new Agent(app);
    await signedIn(agent, token);
    await world.copies.update(item.id, (i) => ({ ...i, state: 'revoked', revokedFrom: i.state }));
    const res = await agent.get('/message');
    expect(res.statusCode).toBe(410);
    expect(res.body).toContain('This message has been withdrawn');
    expectSecurityHeaders(res);
    expect((await agent.get('/message/eml')).statusCode).toBe(401);
  });

  test('expired items show the expiry page, at the link and by the clock', async () => {
    await setup();
    const shredded = world.copies.add({ body: sampleMessage() });
    world.copies.shred(shredded.item.id, 'expired');
    const res = await new Agent(app).get(`/m/${shredded.token}`);
    expect(res.statusCode).toBe(410);
    expect(res.body).toContain('This message has expired');
    expect(res.body).not.toContain('Something went wrong');

    const due = world.copies.add({ body: sampleMessage(), expiresIn: 60_000 });
    const agent = new Agent(app);
    await signedIn(agent, due.token);
    world.clock.advance(60_000);
    const late = await agent.get('/message');
    expect(late.statusCode).toBe(410);
    expect(late.body).toContain('This message has expired');
  });

  test('unknown tokens get a neutral 404 page, the same as a replaced (resent) link', async () => {
    await setup();
    const { item, token } = world.copies.add({ body: sampleMessage() });
    const unknown = await new Agent(app).get('/m/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
    expect(unknown.statusCode).toBe(404);
    expectSecurityHeaders(unknown);
    world.copies.newToken(item.id);
    const old = await new Agent(app).get(`/m/${token}`);
    expect(old.statusCode).toBe(404);
    expect(old.body).toBe(unknown.body);
    const junk = await new Agent(app).get('/m/..%2f..%2fetc');
    expect(junk.statusCode).toBe(404);
    expect(world.copies.eventLog).toHaveLength(0);
  });

  test('security headers on every page, the framed HTML part has its own CSP', async () => {
    await setup();
    const { token } = world.copies.add({ body: sampleMessage() });
    const agent = new Agent(app);
    const pages: LightMyRequestResponse[] = [];
    pages.push(await agent.get('/'));
    pages.push(await agent.get('/static/portal.css'));
    pages.push(await agent.get('/static/portal.js'));
    pages.push(await agent.get('/nowhere'));
    await signedIn(agent, token);
    pages.push(await agent.get('/message'));
    pages.push(await agent.get('/message/attachments/1'));
    pages.push(await agent.get('/message/eml'));
    for (const page of pages) expectSecurityHeaders(page);
    const frame = await agent.get('/message/html');
    expectSecurityHeaders(frame, true);
    expect(frame.headers['content-security-policy']).toBe(MESSAGE_FRAME_CSP);
  });

  test('downloads: attachment and .eml as attachments with no-store; events without names', async () => {
    await setup();
    const pdf = Buffer.from('%PDF-1.4 binary \x00\x01\x02 data');
    const { item, token } = world.copies.add({ body: sampleMessage({ attachment: pdf, attachmentName: 'Blood test – Dana.pdf' }) });
    const agent = new Agent(app);
    await signedIn(agent, token);
    const view = await agent.get('/message');
    const index = /href="\/message\/attachments\/(\d+)"/.exec(view.body)![1];
    const res = await agent.get(`/message/attachments/${index}`);
    expect(res.statusCode).toBe(200);
    expect(res.rawPayload.equals(pdf)).toBe(true);
    expect(res.headers['content-disposition']).toMatch(/^attachment; filename="Blood test _ Dana.pdf"; filename\*=UTF-8''Blood%20test%20%E2%80%93%20Dana.pdf$/);
    expect(res.headers['content-type']).toBe('application/octet-stream');
    const eml = await agent.get('/message/eml');
    expect(eml.headers['content-disposition']).toBe('attachment; filename="message.eml"');
    expect(eml.body).toBe(world.copies.bodies.get(item.id)!.toString());
    expect(world.copies.events(item.id, 'attachment.downloaded')).toHaveLength(1);
    expect(world.copies.events(item.id, 'message.downloaded')).toHaveLength(1);
    expect(JSON.stringify(world.copies.eventLog)).not.toMatch(/Blood|lab results|Dana,/);
  });

  test('hostile HTML is sanitised: no script, form, remote image or CSS url()', async () => {
    await setup();
    const hostile =
      '<script>document.title="pwned"</script><p style="background:url(http://127.0.0.2:9/css)">hi</p><img src="http://127.0.0.2:9/x"><form action="http://127.0.0.2:9/f"><input name=a></form><a href="javascript:alert(1)">j</a><style>body{background:url(http://127.0.0.2:9/s)}</style><img src=x onerror="alert(1)">';
    const { token } = world.copies.add({ body: sampleMessage({ html: hostile }) });
    const agent = new Agent(app);
    await signedIn(agent, token);
    const view = await agent.get('/message');
    expect(view.body).toContain('Pictures from other websites are not shown');
    const frame = await agent.get('/message/html');
    const body = frame.body.split('<body>')[1]!;
    expect(body).not.toMatch(/<script|<form|<style|<input|url\(|127\.0\.0\.2|javascript:|onerror|pwned/i);
    expect(body).toContain('<p>hi</p>');
  });

  test('pictures from other websites only after the reader asks, over https only, for that view', async () => {
    await setup();
    const html = '<p>scan</p><img src="https://images.example/scan.png" alt="scan"><img src="http://images.example/plain.png" alt="plain">';
    const { token } = world.copies.add({ body: sampleMessage({ html }) });
    const agent = new Agent(app);
    await signedIn(agent, token);
    const hidden = await agent.get('/message/html');
    expect(hidden.body).not.toContain('images.example');
    expect(hidden.headers['content-security-policy']).toBe(MESSAGE_FRAME_CSP);
    const view = await agent.get('/message?images=1');
    expect(view.body).toContain('src="/message/html?images=1"');
    const shown = await agent.get('/message/html?images=1');
    expect(shown.body).toContain('src="https://images.example/scan.png"');
    expect(shown.body).not.toContain('http://images.example/plain.png');
    expect(shown.headers['content-security-policy']).toContain("img-src 'self' data: https:");
    expect(shown.headers['content-security-policy']).toContain("default-src 'none'");
    expect((await agent.get('/message')).body).toContain('href="/message?images=1"');
  });

  test('X-Forwarded-For is believed only from a trusted proxy', async () => {
    await setup({ portal: { trustedProxies: ['10.0.0.0/8'] } });
    const { item, token } = world.copies.add({ body: sampleMessage() });
    await new Agent(app, { 'x-forwarded-for': '203.0.113.7' }, '10.1.2.3').get(`/m/${token}`);
    await new Agent(app, { 'x-forwarded-for': '203.0.113.7' }, '192.0.2.50').get(`/m/${token}`);
    const ips = world.copies.events(item.id, 'link.prefetch').map((e) => e.ip);
    expect(ips).toEqual(['203.0.113.7', '192.0.2.50']);
  });

  test('POST routes are rate limited per client address', async () => {
    await setup({ postRateLimit: 3 });
    const agent = new Agent(app);
    const codes = [];
    for (let i = 0; i < 4; i++) codes.push((await agent.post('/signout', {}, { csrf: null })).statusCode);
    expect(codes).toEqual([403, 403, 403, 429]);
  });
});
