import nodemailer from 'nodemailer';
import { checkReady, listenersProbe, storeProbe, type ListenerAddress } from '../../src/admin/health';
import { startRedis, type RedisHandle } from '../support/redis-server';
import { relayFixture, startRelayProcess, type RelayFixture, type RelayProcess } from '../support/relay-process';
import { standardScenarios, startWorld, type World } from '../support/world';
import { until } from '../support/wait';
import { total } from '../support/prometheus';

const LISTENERS: ListenerAddress[] = [{ name: 'smarthost', host: '127.0.0.1', port: 2525 }];

describe('readiness and liveness checks', () => {
  const up = { listeners: LISTENERS, listening: () => true };

  test('ready when the store answers and the listeners are up', async () => {
    const readiness = await checkReady({ store: storeProbe({ ping: async () => undefined }), listeners: listenersProbe(up) });
    expect(readiness).toEqual({ ready: true, checks: { store: { ok: true }, listeners: { ok: true, detail: 'smarthost 127.0.0.1:2525' } } });
    // The JSON keeps the probes' order.
    expect(Object.keys(readiness.checks)).toEqual(['store', 'listeners']);
  });

  test('not ready when the store fails, hangs past the timeout, or the listeners are closed', async () => {
    const failing = await checkReady({
      store: storeProbe({ ping: () => Promise.reject(new Error('Redis queue at 127.0.0.1:6379 is unreachable')) }),
      listeners: listenersProbe(up),
    });
    expect(failing.ready).toBe(false);
    expect(failing.checks.store).toEqual({ ok: false, detail: 'Redis queue at 127.0.0.1:6379 is unreachable' });

    const hanging = await checkReady({ store: storeProbe({ ping: () => new Promise<void>(() => undefined) }, 50), listeners: listenersProbe(up) });
    expect(hanging.ready).toBe(false);
    expect(hanging.checks.store!.detail).toMatch(/did not answer within 50 ms/);

    const closed = await checkReady({ store: storeProbe({ ping: async () => undefined }), listeners: listenersProbe({ listeners: LISTENERS, listening: () => false }) });
    expect(closed.ready).toBe(false);
    expect(closed.checks.listeners).toEqual({ ok: false, detail: 'SMTP listeners are not accepting connections (starting or shutting down)' });
    expect(closed.checks.store!.ok).toBe(true);
  });

  test('any named probe counts; one failing probe is enough to be not ready', async () => {
    expect(await checkReady({})).toEqual({ ready: true, checks: {} });
    const mixed = await checkReady({ a: () => ({ ok: true }), b: async () => ({ ok: false, detail: 'b is down' }) });
    expect(mixed).toEqual({ ready: false, checks: { a: { ok: true }, b: { ok: false, detail: 'b is down' } } });
  });
});

const TOKEN = 'health-test-token-0123456789';
/** A shared server from SEALGATE_TEST_REDIS_URL is not ours to stop. */
const externalRedis = Boolean(process.env.SEALGATE_TEST_REDIS_URL);

(externalRedis ? describe.skip : describe)('admin /healthz, /readyz and /metrics of a relay process (Redis store)', () => {
  let world: World;
  let redis: RedisHandle;
  let fixture: RelayFixture;
  let relay: RelayProcess | undefined;
  let base: string;
  const get = (path: string, token?: string) => fetch(`${base}${path}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});

  beforeAll(async () => {
    world = await startWorld(standardScenarios());
    redis = await startRedis();
    fixture = relayFixture({
      ...world.relayConfig(),
      queue: { path: 'queue', redis: { prefix: redis.prefix } },
      admin: { host: '127.0.0.1', port: 0, tokens: [{ name: 'monitor', token: TOKEN, scopes: ['metrics'] }] },
      delivery: { retrySchedule: ['1s'], pollInterval: '200ms' },
    });
    relay = await startRelayProcess(fixture.configFile, { SEALGATE_REDIS_URL: redis.url });
    const started = relay.logs.find((l) => l.event === 'admin-started') as { port: number } | undefined;
    if (!started) throw new Error('the relay did not log admin-started');
    base = `http://127.0.0.1:${started.port}`;
  });

  afterAll(async () => {
    await relay?.stop('SIGKILL');
    await redis?.stop();
    await world?.stop();
    fixture?.remove();
  });

  test('/metrics over HTTP counts accepted, refused, delivered and diverted mail (token required)', async () => {
    expect((await get('/metrics')).status).toBe(401);
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: relay!.ports.smarthost!, requireTLS: true, tls: { rejectUnauthorized: false } });
    try {
      await transport.sendMail({ envelope: { from: 'clinic@sender.test', to: ['patient@tls13.test', 'patient@nostarttls.test'] }, raw: 'From: clinic@sender.test\r\nSubject: s\r\n\r\nbody\r\n' });
    } finally {
      transport.close();
    }
    const refusing = nodemailer.createTransport({ host: '127.0.0.1', port: relay!.ports.submission!, requireTLS: true, tls: { rejectUnauthorized: false } });
    await expect(refusing.sendMail({ envelope: { from: 'clinic@sender.test', to: ['patient@tls13.test'] }, raw: 'Subject: s\r\n\r\nbody\r\n' })).rejects.toThrow(/530/);
    refusing.close();

    const text = await until(
      'both recipients to be counted',
      async () => {
        const response = await get('/metrics', TOKEN);
        const body = await response.text();
        return total(body, 'sealgate_recipients_total', {}) >= 2 ? body : undefined;
      },
      30_000,
    );
    expect(total(text, 'sealgate_messages_accepted_total', { listener: 'smarthost' })).toBe(1);
    expect(total(text, 'sealgate_messages_refused_total', { reason: 'auth-required' })).toBe(1);
    expect(total(text, 'sealgate_recipients_total', { outcome: 'delivered' })).toBe(1);
    expect(total(text, 'sealgate_recipients_total', { outcome: 'diverted' })).toBe(1);
    expect(text).toMatch(/^process_resident_memory_bytes \d+/m);
    expect(text).toMatch(/^sealgate_store_up 1$/m);
  });

  test('/healthz and /readyz need no token; /readyz fails while Redis is down and recovers when it is back', async () => {
    expect((await get('/healthz')).status).toBe(200);
    const bare = await get('/readyz');
    expect(bare.status).toBe(200);
    expect(await bare.json()).toEqual({ ready: true, version: expect.any(String) });
    const ready = await get('/readyz', TOKEN);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ ready: true, checks: { store: { ok: true }, listeners: { ok: true } } });

    await redis.pause();
    try {
      const down = await until(
        '/readyz to fail',
        async () => {
          const response = await get('/readyz', TOKEN);
          return response.status === 503 ? ((await response.json()) as { ready: boolean; checks: Record<string, { ok: boolean; detail?: string }> }) : undefined;
        },
        15_000,
      );
      expect(down.ready).toBe(false);
      expect(down.checks.store!.ok).toBe(false);
      expect(down.checks.listeners!.ok).toBe(true);
      // A probe without a token sees the 503, not the reason.
      const bareDown = await get('/readyz');
      expect(bareDown.status).toBe(503);
      expect(await bareDown.json()).toEqual({ ready: false, version: expect.any(String) });
      // The process itself is fine: no restart wanted.
      expect((await get('/healthz')).status).toBe(200);
    } finally {
      await redis.resume();
    }
    const back = await until('/readyz to recover', async () => ((await get('/readyz', TOKEN)).status === 200 ? true : undefined), 20_000);
    expect(back).toBe(true);
  });
});
