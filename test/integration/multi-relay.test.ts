import nodemailer from 'nodemailer';
import { loadConfig } from '../../src/config/load';
import { silentLogger } from '../../src/log/logger';
import { createStore } from '../../src/store';
import { verifyEvidence } from '../../src/store/evidence-chain';
import type { EvidenceRecord, Store } from '../../src/store/types';
import { startRedis, type RedisHandle } from '../support/redis-server';
import { relayFixture, startRelayProcess, type RelayFixture, type RelayProcess } from '../support/relay-process';
import { startWorld, type World } from '../support/world';

/** Two relay processes sharing one Redis queue deliver a batch: every message once, none missed, one evidence chain. */

const MESSAGES = 200;
const SUBMIT_CONCURRENCY = 8;

describe('two relays on one Redis', () => {
  let world: World;
  let redis: RedisHandle;
  let fixtures: RelayFixture[];
  let relays: RelayProcess[] = [];
  let store: Store;

  beforeAll(async () => {
    world = await startWorld({
      'alpha.test': { mx: [{ host: 'mx1.alpha.test', tls: 'tls13' }] },
      'beta.test': { mx: [{ host: 'mx1.beta.test', tls: 'tls12-gcm' }] },
    });
    redis = await startRedis();
    const shared = {
      ...world.relayConfig(),
      queue: { path: 'queue', leaseTime: '30s', redis: { prefix: `multi-${process.pid}` } },
      delivery: { pollInterval: '100ms', retrySchedule: ['1s'] },
    };
    // Two separate folders: each relay has its own spool path and dev certificate, one shared Redis queue.
    fixtures = [relayFixture(shared), relayFixture(shared)];
    const env = { SEALGATE_REDIS_URL: redis.url };
    relays = await Promise.all(fixtures.map((f) => startRelayProcess(f.configFile, env)));
    const { config } = loadConfig(fixtures[0]!.configFile, { ...process.env, ...env });
    store = createStore(config, silentLogger());
    await store.open();
  });

  afterAll(async () => {
    await Promise.all(relays.map((r) => r.stop('SIGKILL')));
    await store?.close();
    await redis?.stop();
    await world?.stop();
    for (const f of fixtures ?? []) f.remove();
  });

  test(`${MESSAGES} messages, half submitted to each relay, each delivered exactly once`, async () => {
    const transports = relays.map((r) =>
      nodemailer.createTransport({ host: '127.0.0.1', port: r.ports.smarthost!, pool: true, maxConnections: SUBMIT_CONCURRENCY / 2, requireTLS: true, tls: { rejectUnauthorized: false } }),
    );
    const ids: string[] = [];
    try {
      let next = 0;
      await Promise.all(
        Array.from({ length: SUBMIT_CONCURRENCY }, async () => {
          while (next < MESSAGES) {
            const n = next++;
            const info = await transports[n % 2]!.sendMail({
              envelope: { from: 'clinic@sender.test', to: [`p${n}@alpha.test`, `p${n}@beta.test`] },
              raw: `From: clinic@sender.test\r\nTo: p${n}@alpha.test\r\nMessage-ID: <batch-${n}@sender.test>\r\nSubject: batch\r\n\r\nmessage ${n}\r\n`,
            });
            ids.push(/queued as (\S+)/.exec(info.response)![1]!);
          }
        }),
      );
    } finally {
      for (const t of transports) t.close();
    }
    expect(ids).toHaveLength(MESSAGES);

    const deadline = Date.now() + 90_000;
    for (;;) {
      const counts = await store.counts();
      if (counts.jobs.delivered === MESSAGES * 2) break;
      if (Date.now() > deadline) throw new Error(`not all delivered in time: ${JSON.stringify(counts.jobs)}`);
      await new Promise((r) => setTimeout(r, 250));
    }

    for (const host of ['mx1.alpha.test', 'mx1.beta.test']) {
      const arrivals = world.mx(host).received.map((m) => /Message-ID: <(batch-\d+)@/.exec(m.raw.toString())?.[1]);
      expect(arrivals).toHaveLength(MESSAGES);
      expect(new Set(arrivals).size).toBe(MESSAGES);
    }
    // Both processes took part: each logged delivery attempts.
    const attemptsPerRelay = relays.map((r) => r.logs.filter((l) => l.event === 'job-attempted').length);
    expect(attemptsPerRelay.every((n) => n > 0)).toBe(true);
    expect(attemptsPerRelay.reduce((a, b) => a + b, 0)).toBe(MESSAGES * 2);

    // Both relays appended their outcomes to one evidence log in Redis: one chain, every outcome once, no gap.
    const verification = await verifyEvidence(store);
    expect(verification).toMatchObject({ ok: true, firstBroken: null });
    expect(verification.records).toBe((await store.evidenceHead())!.seq);
    const outcomes: EvidenceRecord[] = [];
    for await (const record of store.queryEvidence({ kinds: ['recipient-outcome'] })) outcomes.push(record);
    expect(outcomes).toHaveLength(MESSAGES * 2);
    expect(new Set(outcomes.map((r) => r.recipient)).size).toBe(MESSAGES * 2);
    expect(outcomes.every((r) => r.data.outcome === 'delivered')).toBe(true);
  }, 150_000);
});
