import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import path from 'node:path';
import type { Readable } from 'node:stream';
import cookie from '@fastify/cookie';
import csrf from '@fastify/csrf-protection';
import formbody from '@fastify/formbody';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import { Eta } from 'eta';
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import { verifyPassword } from '../../auth/users';
import { networkList } from '../../config/schema';
import type { PortalEventInput, PortalItem } from '../../store/types';
import type { PortalWebDeps } from './deps';
import { humanSize, maskAddress, parseMessage } from './message';
import { OTP_DIGITS, OTP_MAX_TRIES, OTP_VALID_MS, PREAUTH_MS, PortalState, tokenHashOf, uaHash, type PreAuth, type Session } from './state';

/** Templates and static files sit next to the compiled code (`npm run build` copies them into dist). */
const VIEWS_DIR = path.join(__dirname, 'views');
const STATIC_DIR = path.join(__dirname, 'static');

export const COOKIES = {
  /** The link token, moved out of the URL by GET /m/:token (no server state is created by a GET). */
  link: '__Host-sg-link',
  /** This browser's pre-authentication id (state in the cache); codes are bound to it. */
  preauth: '__Host-sg-pre',
  session: '__Host-sg-session',
  csrf: '__Host-sg-csrf',
} as const;

const COOKIE_OPTS = { httpOnly: true, secure: true, sameSite: 'strict', path: '/' } as const;

/** Every page: no scripts but our own file, no framing, nothing from other origins. */
const PAGE_CSP = {
  defaultSrc: ["'none'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'"],
  frameSrc: ["'self'"],
  connectSrc: ["'self'"],
  formAction: ["'self'"],
  baseUri: ["'none'"],
  frameAncestors: ["'none'"],
};
/** The sanitised HTML part: framed by our own page only, no scripts at all, images only inline. */
export const MESSAGE_FRAME_CSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; frame-ancestors 'self'; base-uri 'none'; form-action 'none'";
/** The same frame after the reader chose to see pictures from other websites (https only). */
export const MESSAGE_FRAME_CSP_WITH_IMAGES = MESSAGE_FRAME_CSP.replace("img-src 'self' data:", "img-src 'self' data: https:");

const TOKEN_SHAPE = /^[A-Za-z0-9_-]{20,128}$/;
const OPENABLE_FROM: ReadonlySet<PortalItem['state']> = new Set(['stored', 'notified', 'notify-failed']);
const READABLE_FROM: ReadonlySet<PortalItem['state']> = new Set(['stored', 'notified', 'notify-failed', 'opened']);

interface Page {
  status: number;
  view: string;
  data: Record<string, unknown>;
}

type Body = Record<string, string | undefined> | undefined;

const DATE_FORMAT = new Intl.DateTimeFormat('en-GB', { dateStyle: 'long', timeStyle: 'short', timeZone: 'UTC' });

function formatTime(ms: number): string {
  return `${DATE_FORMAT.format(new Date(ms))} UTC`;
}

function notice(status: number, heading: string, lines: string[], link?: { href: string; label: string }): Page {
  return { status, view: 'notice', data: { title: heading, heading, lines, link } };
}

const NOT_FOUND = notice(404, 'Link not found', [
  'This link does not work. It may be incomplete, or a newer email may have replaced it.',
  'Please open the most recent email about this message, or contact the sender.',
]);
const SIGNED_OUT = notice(401, 'You are signed out', ['For your safety, your session has ended. To read the message again, open the link in the email you received.']);
const START_AGAIN = notice(401, 'Please start again', ['This step has timed out or was opened in another browser. Open the link in the email you received to start again.']);

/** Final states (and items past their expiry): a friendly page, never an error page. */
function gonePage(item: PortalItem, now: number): Page | undefined {
  switch (item.state) {
    case 'revoked':
      return notice(410, 'This message has been withdrawn', ['The sender has withdrawn this message. If you still need it, please contact the sender.']);
    case 'released':
      return notice(410, 'This message was delivered by email', ['This message has since been delivered to your mailbox in the normal way. Please look for it there.']);
    case 'expired':
    case 'purged':
      return notice(410, 'This message has expired', [
        'Messages can only be picked up for a limited time, and this one is no longer available.',
        'If you still need it, please ask the sender to send it again.',
      ]);
    default:
      if (item.expiresAt <= now)
        return notice(410, 'This message has expired', [
          'Messages can only be picked up for a limited time, and this one is no longer available.',
          'If you still need it, please ask the sender to send it again.',
        ]);
      return undefined;
  }
}

function attachmentDisposition(filename: string): string {
  const ascii = filename.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(filename)}`;
}

/** Fastify's client-address rule: X-Forwarded-For is believed only from portal.trustedProxies. */
function trustProxy(cidrs: readonly string[]): FastifyServerOptions['trustProxy'] {
  if (cidrs.length === 0) return false;
  const list = networkList(cidrs);
  return (address: string) => list.check(address.replace(/^::ffff:(?=\d+\.)/, ''), isIPv6(address) && !/^::ffff:\d+\./.test(address) ? 'ipv6' : 'ipv4');
}

export function portalServerOptions(deps: PortalWebDeps): FastifyServerOptions {
  return {
    loggerInstance: deps.logger.child({ component: 'portal-web' }),
    // Request logs would carry link tokens in URLs; errors are logged by the error handler without content.
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: trustProxy(deps.config.portal.trustedProxies),
    bodyLimit: 64 * 1024,
  };
}

/** Registers the portal's plugins and routes on a fastify instance (HTTPS in production, plain for inject tests). */
export async function registerPortal(app: FastifyInstance, deps: PortalWebDeps): Promise<void> {
  const now = deps.now ?? Date.now;
  const { config, copies, notices, logger } = deps;
  const org = config.portal.organisation;
  const state = new PortalState(deps.cache, now, config.portal.sessionIdle, config.portal.sessionMax);
  const eta = new Eta({ views: VIEWS_DIR, autoEscape: true, cache: true });
  const css = readFileSync(path.join(STATIC_DIR, 'portal.css'));
  const js = readFileSync(path.join(STATIC_DIR, 'portal.js'));
  const postLimit = { rateLimit: { max: deps.postRateLimit ?? 20, timeWindow: 60_000 } };

  await app.register(helmet, {
    contentSecurityPolicy: { useDefaults: false, directives: PAGE_CSP },
    strictTransportSecurity: { maxAge: 31_536_000, includeSubDomains: true },
    referrerPolicy: { policy: 'no-referrer' },
    frameguard: { action: 'deny' },
    xContentTypeOptions: true,
  });
  await app.register(cookie);
  await app.register(formbody);
  // The CSRF secret lives in its own __Host- cookie (no server secret, so any relay instance can check it).
  await app.register(csrf, { sessionPlugin: '@fastify/cookie', cookieKey: COOKIES.csrf, cookieOpts: COOKIE_OPTS });
  await app.register(rateLimit, { global: false });
  // preHandler, not onRequest: the form body (with _csrf) is parsed by then.
  const csrfCheck = app.csrfProtection.bind(app);

  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('cache-control', 'no-store');
    return payload;
  });

  const render = (reply: FastifyReply, page: Page): FastifyReply =>
    reply
      .code(page.status)
      .type('text/html; charset=utf-8')
      .send(eta.render(page.view, { org, script: false, ...page.data }));

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
    const status = err.statusCode ?? 500;
    if (status === 403 && err.code === 'FST_CSRF_INVALID_TOKEN') {
      return render(reply, notice(403, 'Please try again', ['This form was out of date. Go back, reload the page and try again.']));
    }
    if (status === 429) return render(reply, notice(429, 'Too many requests', ['Please wait a minute and try again.']));
    if (status >= 400 && status < 500) return render(reply, notice(status, 'Something was not right', ['Please go back and try again.']));
    logger.error({ err: { name: err.name, code: err.code, message: err.message } }, 'portal request failed');
    return render(reply, notice(500, 'Something went wrong', ['Please try again in a few minutes. Your message is safe.']));
  });
  app.setNotFoundHandler((_req, reply) => render(reply, NOT_FOUND));

  const who = (req: FastifyRequest): Pick<PortalEventInput, 'ip' | 'uaHash'> => ({ ip: req.ip, uaHash: uaHash(req.headers['user-agent']) });
  const record = (req: FastifyRequest, itemId: string, type: string, detail?: PortalEventInput['detail']) =>
    copies.record(itemId, { at: now(), type, actor: 'recipient', ...who(req), ...(detail ? { detail } : {}) });

  /** The pre-authentication context of this browser, or the page to show instead. */
  async function preContext(req: FastifyRequest): Promise<{ preId: string; pre: PreAuth; item: PortalItem } | Page> {
    const preId = req.cookies[COOKIES.preauth];
    const pre = await state.preAuth(preId);
    if (!preId || !pre) return START_AGAIN;
    const item = await copies.get(pre.itemId);
    if (!item) return NOT_FOUND;
    const gone = gonePage(item, now());
    if (gone) return gone;
    if (item.tokenHash !== pre.tokenHash) return START_AGAIN;
    return { preId, pre, item };
  }

  /** The signed-in context, or the page to show instead (revoked mid-session: 410). */
  async function sessionContext(req: FastifyRequest, reply: FastifyReply): Promise<{ sid: string; session: Session; item: PortalItem } | Page> {
    const sid = req.cookies[COOKIES.session];
    const session = await state.session(sid, true);
    if (!sid || !session) {
      if (sid) reply.clearCookie(COOKIES.session, COOKIE_OPTS);
      return SIGNED_OUT;
    }
    const item = await copies.get(session.itemId);
    const gone = item ? gonePage(item, now()) : notice(410, 'This message is no longer available', ['Please contact the sender.']);
    if (gone || !item) {
      await state.endSession(sid);
      reply.clearCookie(COOKIES.session, COOKIE_OPTS);
      return gone ?? SIGNED_OUT;
    }
    if (item.tokenHash !== session.tokenHash) {
      await state.endSession(sid);
      reply.clearCookie(COOKIES.session, COOKIE_OPTS);
      return SIGNED_OUT;
    }
    return { sid, session, item };
  }

  const isPage = (value: object): value is Page => 'view' in value;

  async function verifyPage(reply: FastifyReply, preId: string, item: PortalItem, extra: { status?: number; error?: string; notice?: string } = {}): Promise<FastifyReply> {
    const facts = copies.facts(item);
    return render(reply, {
      status: extra.status ?? 200,
      view: 'verify',
      data: {
        title: 'Confirm it is you',
        masked: maskAddress(facts.recipient),
        csrf: reply.generateCsrf(),
        otp: item.auth.methods.includes('email-otp'),
        secret: item.auth.methods.includes('secret') && Boolean(item.auth.secretHash),
        codeSent: await state.hasCode(preId),
        digits: OTP_DIGITS,
        error: extra.error,
        status: extra.notice,
      },
    });
  }

  async function lockedPage(reply: FastifyReply, until: number): Promise<FastifyReply> {
    return render(
      reply,
      notice(429, 'Sign-in is paused', [
        `There were too many wrong attempts, so signing in to this message is paused until ${formatTime(until)}.`,
        'We have emailed the recipient about this. If this was you, please wait and try again.',
      ]),
    );
  }

  async function lockIfNeeded(req: FastifyRequest, reply: FastifyReply, item: PortalItem, preId: string): Promise<FastifyReply | undefined> {
    const until = await state.recordFailure(item.id);
    if (until === undefined) return undefined;
    await state.dropPreAuth(preId);
    reply.clearCookie(COOKIES.preauth, COOKIE_OPTS);
    await record(req, item.id, 'otp.locked', { until });
    try {
      await notices.send({ kind: 'otp-locked', itemId: item.id, to: copies.facts(item).recipient, until });
    } catch (err) {
      logger.error({ itemId: item.id, err: { name: (err as Error).name } }, 'portal could not queue the lockout notice');
    }
    return lockedPage(reply, until);
  }

  async function signIn(req: FastifyRequest, reply: FastifyReply, ctx: { preId: string; pre: PreAuth; item: PortalItem }, method: 'email-otp' | 'secret'): Promise<FastifyReply> {
    await state.clearFailures(ctx.item.id);
    await state.dropPreAuth(ctx.preId);
    const sid = await state.createSession(ctx.item.id, ctx.pre.tokenHash);
    await record(req, ctx.item.id, 'auth.success', { method });
    reply.clearCookie(COOKIES.preauth, COOKIE_OPTS);
    reply.setCookie(COOKIES.session, sid, COOKIE_OPTS);
    return reply.code(303).redirect('/message');
  }

  app.get('/static/portal.css', (_req, reply) => reply.type('text/css; charset=utf-8').send(css));
  app.get('/static/portal.js', (_req, reply) => reply.type('text/javascript; charset=utf-8').send(js));

  app.get('/', (_req, reply) =>
    render(reply, notice(200, 'Secure message portal', [`${org} uses this portal to deliver messages securely.`, 'To read a message, open the link in the email you received.'])),
  );

  // The link itself: never changes the item (scanners fetch it first); moves the token into a cookie.
  app.get<{ Params: { token: string } }>('/m/:token', async (req, reply) => {
    const token = req.params.token;
    const item = TOKEN_SHAPE.test(token) ? await copies.byToken(token) : undefined;
    if (!item) return render(reply, NOT_FOUND);
    const gone = gonePage(item, now());
    if (gone) return render(reply, gone);
    await record(req, item.id, 'link.prefetch', { method: req.method });
    reply.setCookie(COOKIES.link, token, { ...COOKIE_OPTS, maxAge: PREAUTH_MS / 1000 });
    return reply.code(303).redirect('/open');
  });

  app.get<{ Querystring: { c?: string } }>('/open', async (req, reply) => {
    const token = req.cookies[COOKIES.link];
    if (!token) {
      if (await state.session(req.cookies[COOKIES.session], false)) return reply.code(303).redirect('/message');
      // A SameSite=Strict cookie set during a cross-site navigation is not sent on its redirect: one same-site click fixes that.
      if (req.query.c === undefined) return render(reply, { status: 200, view: 'continue', data: { title: 'Open your secure message' } });
      return render(reply, START_AGAIN);
    }
    const item = await copies.byToken(token);
    if (!item) {
      reply.clearCookie(COOKIES.link, COOKIE_OPTS);
      return render(reply, NOT_FOUND);
    }
    const gone = gonePage(item, now());
    if (gone) return render(reply, gone);
    return render(reply, { status: 200, view: 'open', data: { title: 'You have a secure message', masked: maskAddress(copies.facts(item).recipient), csrf: reply.generateCsrf() } });
  });

  app.post('/open', { config: postLimit, preHandler: csrfCheck }, async (req, reply) => {
    const token = req.cookies[COOKIES.link];
    const item = token ? await copies.byToken(token) : undefined;
    if (!token || !item) return render(reply, token ? NOT_FOUND : START_AGAIN);
    const gone = gonePage(item, now());
    if (gone) return render(reply, gone);
    const preId = await state.createPreAuth(item.id, tokenHashOf(token));
    await record(req, item.id, 'link.opened');
    if (OPENABLE_FROM.has(item.state)) {
      await copies.update(item.id, (current) => (OPENABLE_FROM.has(current.state) ? { ...current, state: 'opened', openedAt: current.openedAt ?? now() } : current));
    }
    reply.clearCookie(COOKIES.link, COOKIE_OPTS);
    reply.setCookie(COOKIES.preauth, preId, { ...COOKIE_OPTS, maxAge: PREAUTH_MS / 1000 });
    return reply.code(303).redirect('/verify');
  });

  app.get<{ Querystring: { sent?: string } }>('/verify', async (req, reply) => {
    const ctx = await preContext(req);
    if (isPage(ctx)) return render(reply, ctx);
    const until = await state.lockedUntil(ctx.item.id);
    if (until !== undefined) return lockedPage(reply, until);
    return verifyPage(reply, ctx.preId, ctx.item, req.query.sent ? { notice: 'We have emailed you a code. It can take a minute to arrive.' } : {});
  });

  app.post('/otp/send', { config: postLimit, preHandler: csrfCheck }, async (req, reply) => {
    const ctx = await preContext(req);
    if (isPage(ctx)) return render(reply, ctx);
    const { item, preId } = ctx;
    if (!item.auth.methods.includes('email-otp')) return verifyPage(reply, preId, item, { status: 400, error: 'Codes by email are not available for this message.' });
    const until = await state.lockedUntil(item.id);
    if (until !== undefined) return lockedPage(reply, until);
    if (!(await state.allowSend(item.id))) {
      return verifyPage(reply, preId, item, { status: 429, error: 'You have asked for 3 codes in the last hour. Please use the latest code, or wait an hour and try again.' });
    }
    const code = await state.newCode(preId, item.id);
    await notices.send({ kind: 'otp-code', itemId: item.id, to: copies.facts(item).recipient, code, validForMs: OTP_VALID_MS });
    await record(req, item.id, 'otp.sent');
    return reply.code(303).redirect('/verify?sent=1');
  });

  app.post('/otp/verify', { config: postLimit, preHandler: csrfCheck }, async (req, reply) => {
    const ctx = await preContext(req);
    if (isPage(ctx)) return render(reply, ctx);
    const { item, preId } = ctx;
    const until = await state.lockedUntil(item.id);
    if (until !== undefined) return lockedPage(reply, until);
    const code = String((req.body as Body)?.code ?? '').slice(0, 64);
    const result = await state.checkCode(preId, item.id, code);
    if (result === 'ok') return signIn(req, reply, ctx, 'email-otp');
    await record(req, item.id, 'otp.failed', { method: 'email-otp', reason: result });
    const locked = await lockIfNeeded(req, reply, item, preId);
    if (locked) return locked;
    const stillValid = await state.hasCode(preId);
    const error =
      result === 'wrong' && stillValid
        ? `That code is not right. Please check it and try again (at most ${OTP_MAX_TRIES} tries per code).`
        : result === 'expired'
          ? 'That code has expired. Please ask for a new code.'
          : result === 'none'
            ? 'There is no valid code for this browser. Please ask for a new code.'
            : 'That code can no longer be used. Please ask for a new code.';
    return verifyPage(reply, preId, item, { status: 400, error });
  });

  app.post('/secret', { config: postLimit, preHandler: csrfCheck }, async (req, reply) => {
    const ctx = await preContext(req);
    if (isPage(ctx)) return render(reply, ctx);
    const { item, preId } = ctx;
    const hash = item.auth.secretHash;
    if (!item.auth.methods.includes('secret') || !hash) return verifyPage(reply, preId, item, { status: 400, error: 'A passphrase is not available for this message.' });
    const until = await state.lockedUntil(item.id);
    if (until !== undefined) return lockedPage(reply, until);
    const passphrase = String((req.body as Body)?.passphrase ?? '').slice(0, 1024);
    // verifyPassword: scrypt with the hash's own parameters, compared with timingSafeEqual.
    if (passphrase.length > 0 && (await verifyPassword(passphrase, hash))) return signIn(req, reply, ctx, 'secret');
    await record(req, item.id, 'otp.failed', { method: 'secret', reason: 'wrong' });
    const locked = await lockIfNeeded(req, reply, item, preId);
    if (locked) return locked;
    return verifyPage(reply, preId, item, { status: 400, error: 'That passphrase is not right. Please check it and try again.' });
  });

  async function openParsed(item: PortalItem, remoteImages = false) {
    return parseMessage(await copies.openMessage(item), { remoteImages });
  }

  /** `?images=1`: the reader chose to see pictures from other websites for this view (never remembered). */
  function wantsImages(req: FastifyRequest): boolean {
    return (req.query as Record<string, unknown> | undefined)?.images === '1';
  }

  app.get('/message', async (req, reply) => {
    const ctx = await sessionContext(req, reply);
    if (isPage(ctx)) return render(reply, ctx);
    const { item } = ctx;
    const message = await openParsed(item);
    await record(req, item.id, 'message.viewed');
    if (READABLE_FROM.has(item.state)) {
      await copies.update(item.id, (current) => (READABLE_FROM.has(current.state) ? { ...current, state: 'read', readAt: current.readAt ?? now() } : current));
    }
    const idle = config.portal.sessionIdle;
    return render(reply, {
      status: 200,
      view: 'message',
      data: {
        title: 'Your secure message',
        script: true,
        subject: message.subject,
        from: message.from || copies.facts(item).from,
        date: message.date,
        dateText: message.date ? formatTime(Date.parse(message.date)) : undefined,
        text: message.text,
        hasHtml: message.html !== undefined,
        remoteImagesDropped: message.remoteImagesDropped,
        showImages: wantsImages(req),
        attachments: message.attachments.map((a) => ({ index: a.index, filename: a.filename, size: humanSize(a.size) })),
        csrf: reply.generateCsrf(),
        idleMs: idle,
        idleMinutes: Math.round(idle / 60_000),
      },
    });
  });

  app.get('/message/html', async (req, reply) => {
    const ctx = await sessionContext(req, reply);
    if (isPage(ctx)) return render(reply, ctx);
    const images = wantsImages(req);
    const message = await openParsed(ctx.item, images);
    const doc = `<!doctype html><html><head><meta charset="utf-8"><title>Message</title><style>body{font-family:system-ui,sans-serif;margin:8px;color:#1b1b1b;background:#fff;overflow-wrap:anywhere}img{max-width:100%;height:auto}</style></head><body>${message.html ?? ''}</body></html>`;
    reply.header('content-security-policy', images ? MESSAGE_FRAME_CSP_WITH_IMAGES : MESSAGE_FRAME_CSP);
    reply.header('x-frame-options', 'SAMEORIGIN');
    return reply.type('text/html; charset=utf-8').send(doc);
  });

  app.get<{ Params: { index: string } }>('/message/attachments/:index', async (req, reply) => {
    const ctx = await sessionContext(req, reply);
    if (isPage(ctx)) return render(reply, ctx);
    const index = /^\d{1,4}$/.test(req.params.index) ? Number(req.params.index) : -1;
    const message = await openParsed(ctx.item);
    const attachment = message.raw[index];
    const listed = message.attachments.find((a) => a.index === index);
    if (!attachment || !listed) return render(reply, notice(404, 'Attachment not found', ['This message has no such attachment.']));
    await record(req, ctx.item.id, 'attachment.downloaded', { index, size: listed.size });
    return reply.header('content-disposition', attachmentDisposition(listed.filename)).type('application/octet-stream').send(attachment.content);
  });

  app.get('/message/eml', async (req, reply) => {
    const ctx = await sessionContext(req, reply);
    if (isPage(ctx)) return render(reply, ctx);
    const stream: Readable = await copies.openMessage(ctx.item);
    await record(req, ctx.item.id, 'message.downloaded');
    return reply.header('content-disposition', 'attachment; filename="message.eml"').type('message/rfc822').send(stream);
  });

  app.post('/session/extend', { config: postLimit, preHandler: csrfCheck }, async (req, reply) => {
    const ctx = await sessionContext(req, reply);
    if (isPage(ctx)) return render(reply, ctx);
    return reply.code(303).redirect('/message');
  });

  app.post('/signout', { config: postLimit, preHandler: csrfCheck }, async (req, reply) => {
    const sid = req.cookies[COOKIES.session];
    if (sid) await state.endSession(sid);
    reply.clearCookie(COOKIES.session, COOKIE_OPTS);
    return reply.code(303).redirect('/signed-out');
  });

  app.get('/signed-out', (_req, reply) => render(reply, notice(200, 'You are signed out', ['To read the message again, open the link in the email you received.'])));
}

/** The portal app without a listener (inject tests). */
export async function buildPortalApp(deps: PortalWebDeps): Promise<FastifyInstance> {
  const app = Fastify(portalServerOptions(deps));
  await registerPortal(app, deps);
  await app.ready();
  return app;
}
