import { loadConfig } from '../../src/config/load';
import { silentLogger } from '../../src/log/logger';
import { createStore } from '../../src/store';
import type { Store } from '../../src/store/types';
import { sleep } from '../support/crash-load';
import { messageIdOf } from '../support/crash-reconcile';
import { startRedis, type RedisHandle } from '../support/redis-server';
import { relayFixture, startRelayProcess, type RelayFixture, type RelayProcess } from '../support/relay-process';
import { RawSmtpClient } from '../support/smtp-client';
import { standardScenarios, startWorld, type World } from '../support/world';

/**
 * No crash at all: jobs claimed together but queued behind a slow destination (one delivery at a time per
 * domain) wait longer than their lease. The relay must not take its own waiting jobs over as expired and
 * deliver them twice: with one relay and no kill, every recipient arrives exactly once. (The crash loop
 * found this as duplicates with no kill between the copies.)
 */

const MESSAGES = 5;

describe.each(['file', 'redis'] as const)('a job waiting longer than its lease in one relay (%s store)', (backend) => {
  let world: World;
  let redis: RedisHandle | undefined;
  let fixture: RelayFixture;
  let relay: RelayProcess | undefined;
  let store: Store;

  beforeAll(async () => {
    world = await startWorld(standardScenarios());
    redis = backend === 'redis' ? await startRedis() : undefined;
  });

  afterAll(async () => {
    await relay?.stop('SIGKILL');
    await store?.close();
    await redis?.stop();
    await world?.stop();
    fixture?.remove();
  });

  test(`${MESSAGES} messages to a slow MX, one at a time, 2 s each, lease 3 s: each delivered once`, async () => {
    const env: NodeJS.ProcessEnv = redis ? { SEALGATE_REDIS_URL: redis.url } : {};
    fixture = relayFixture({
      ...world.relayConfig(),
      queue: { path: 'queue', leaseTime: '3s', redis: { prefix: `${redis?.prefix ?? 'lease'}-wait` } },
      delivery: { retrySchedule: ['1s'], pollInterval: '200ms', perDestination: 1 },
    });
    const { config } = loadConfig(fixture.configFile, { ...process.env, ...env });
    store = createStore(config, silentLogger());
    await store.open();
    const slow = world.mx('mx1.slow.test');
    slow.setReplies({ dataDelayMs: 2_000 });

    // Each job is claimed as it arrives and then waits behind the one slow delivery allowed for the domain.
    relay = await startRelayProcess(fixture.configFile, env);
    const submitter = await RawSmtpClient.connect(relay.ports.smarthost!, { timeoutMs: 20_000 });
    await submitter.command('EHLO lease.sender.test');
    await submitter.startTls({ rejectUnauthorized: false });
    await submitter.command('EHLO lease.sender.test');
    for (let i = 0; i < MESSAGES; i++) {
      expect((await submitter.command('MAIL FROM:<clinic@sender.test>')).code).toBe(250);
      expect((await submitter.command(`RCPT TO:<w${i}@slow.test>`)).code).toBe(250);
      expect((await submitter.command('DATA')).code).toBe(354);
      submitter.write(`From: clinic@sender.test\r\nMessage-ID: <lease-${backend}-${i}@sender.test>\r\nSubject: lease\r\n\r\nbody\r\n.\r\n`);
      expect((await submitter.readReply()).code).toBe(250);
    }
    submitter.close();

    // One at a time, 2 s each: the last one waits about 8 s, well past its 3 s lease.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const { jobs } = await store.counts();
      if (jobs.queued + jobs.deferred + jobs.leased === 0 || Date.now() > deadline) break;
      await sleep(250);
    }
    await sleep(3_000);
    const copies = new Map<string, number>();
    for (const m of slow.received) copies.set(messageIdOf(m.raw) ?? '?', (copies.get(messageIdOf(m.raw) ?? '?') ?? 0) + 1);
    const takeovers = relay.logs.filter((l) => l.event === 'possible-duplicate').map((l) => `${String(l.jobId)}: ${String(l.msg)}`);
    console.log(`lease wait (${backend}): copies per message ${JSON.stringify(Object.fromEntries(copies))}; possible-duplicate lines: ${takeovers.length}`);
    expect([...copies.values()].filter((n) => n > 1)).toEqual([]);
    expect(copies.size).toBe(MESSAGES);
    expect(takeovers).toEqual([]);
  }, 120_000);
});
