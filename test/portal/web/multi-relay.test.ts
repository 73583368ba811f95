import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { silentLogger } from '../../../src/log/logger';
import { PortalCopies } from '../../../src/portal/copies';
import { loadOrCreateKeyring } from '../../../src/portal/crypto';
import { buildPortalApp } from '../../../src/portal/web';
import { defaultTlsProfile } from '../../../src/policy/tls-profile';
import { RedisStore } from '../../../src/store/redis/redis-store';
import { startRedis, type RedisHandle } from '../../support/redis-server';
import { Agent } from './agent';
import { FakeNotices, portalConfig, sampleMessage } from './fakes';

/**
 * Several relays on one Redis: any instance serves any step of a recipient's pickup. Two portal apps, each with
 * its own store connection and its own copy of the key file in memory, take turns: the link on A, the button on
 * B, the code sent by A, checked by B, the message read on A. Nothing of the flow lives in one process.
 */
describe('portal pickup across two relay instances on one Redis', () => {
  let redis: RedisHandle;
  let dir: string;
  const stores: RedisStore[] = [];
  const apps: FastifyInstance[] = [];
  const notices = new FakeNotices();

  beforeAll(async () => {
    redis = await startRedis();
    dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-portal-multi-'));
    const keyFile = path.join(dir, 'keys.json');
    for (let i = 0; i < 2; i++) {
      const store = new RedisStore({ url: redis.url, prefix: redis.prefix, keepFinished: 86_400_000, onWeakDurability: 'warn', logger: silentLogger() });
      await store.open();
      stores.push(store);
      const copies = new PortalCopies(store, await loadOrCreateKeyring(keyFile, silentLogger()));
      apps.push(await buildPortalApp({ config: portalConfig(), logger: silentLogger(), copies, notices, cache: store, tls: { cert: '', key: '' }, profile: defaultTlsProfile(), postRateLimit: 1000 }));
    }
  });

  afterAll(async () => {
    for (const app of apps) await app.close();
    for (const store of stores) await store.close();
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** The browser moves from one instance to the other with its cookies and the page's CSRF token. */
  function handOff(from: Agent, to: Agent): Agent {
    to.cookies.clear();
    for (const [name, value] of from.cookies) to.cookies.set(name, value);
    to.csrf = from.csrf;
    return to;
  }

  test('link on A, button on B, code sent by A and checked by B, message read on A; one audit trail', async () => {
    const keyring = await loadOrCreateKeyring(path.join(dir, 'keys.json'), silentLogger());
    const writer = new PortalCopies(stores[0]!, keyring);
    const { item, token } = await writer.create({
      fallbackId: '01JQMULTI000000000000000.0123456789abcdef',
      queueId: 'Q1',
      jobId: 'Q1/partner.example',
      facts: { recipient: 'dana@partner.example', from: 'doctor@clinic.example', subject: 'Your lab results' },
      body: Readable.from([Buffer.from(sampleMessage())]),
      expiresAt: Date.now() + 86_400_000,
      auth: { methods: ['email-otp'] },
    });
    const a = new Agent(apps[0]!);
    const b = new Agent(apps[1]!);

    expect((await a.get(`/m/${token}`)).statusCode).toBe(303);
    handOff(a, b);
    expect((await b.get('/open')).body).toContain('d***@partner.example');
    expect((await b.post('/open')).statusCode).toBe(303);
    handOff(b, a);
    await a.get('/verify');
    expect((await a.post('/otp/send')).statusCode).toBe(303);
    handOff(a, b);
    await b.get('/verify?sent=1');
    const verified = await b.post('/otp/verify', { code: notices.lastCode(item.id) });
    expect(verified.statusCode).toBe(303);
    expect(verified.headers.location).toBe('/message');
    handOff(b, a);
    const message = await a.get('/message');
    expect(message.statusCode).toBe(200);
    expect(message.body).toContain('Your lab results');

    const reader = new PortalCopies(stores[1]!, keyring);
    const types = (await reader.events(item.id)).map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(['portal.stored', 'link.prefetch', 'link.opened', 'otp.sent', 'auth.success', 'message.viewed']));
    expect(await reader.verifyTrail(item.id)).toEqual({ ok: true, events: types.length });
    expect((await reader.get(item.id))?.state).toBe('read');
  });
});
