import net from 'node:net';
import nodemailer from 'nodemailer';
import { loadConfig } from '../../src/config/load';
import { silentLogger } from '../../src/log/logger';
import { createStore } from '../../src/store';
import type { Store } from '../../src/store/types';
import { startRedis, type RedisHandle } from '../support/redis-server';
import { relayFixture, startRelayProcess, type RelayFixture, type RelayProcess } from '../support/relay-process';
import { standardScenarios, startWorld, type World } from '../support/world';
import { until, finalMessage } from '../support/wait';

/**
 * Graceful shutdown (SIGTERM) of the real relay process: it stops accepting at once, lets a delivery
 * that finishes within delivery.shutdownGrace complete, cuts off one that does not and hands its job
 * back (due again, not leased), exits 0, and the next start delivers what was cut off.
 */

const SHUTDOWN_GRACE_MS = 5_000;
/** Fast enough to finish within the grace, slow enough to be in flight when SIGTERM arrives. */
const FAST_DATA_DELAY_MS = 1_000;

async function submit(port: number, to: string, tag: string): Promise<string> {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port, requireTLS: true, tls: { rejectUnauthorized: false } });
  try {
    const info = await transport.sendMail({
      envelope: { from: 'clinic@sender.test', to: [to] },
      raw: `From: clinic@sender.test\r\nTo: ${to}\r\nMessage-ID: <${tag}@sender.test>\r\nSubject: shutdown\r\n\r\nbody\r\n`,
    });
    return /queued as (\S+)/.exec(info.response)![1]!;
  } finally {
    transport.close();
  }
}

/** 'refused' once nothing listens on the port any more. */
function probeConnect(port: number): Promise<'refused' | 'connected'> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', () => resolve('refused'));
  });
}

function exitWithin(relay: RelayProcess, ms: number): Promise<number | null | 'still running'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'still running'>((resolve) => (timer = setTimeout(() => resolve('still running'), ms)));
  return Promise.race([relay.stop('SIGTERM'), timeout]).finally(() => clearTimeout(timer));
}

describe.each(['file', 'redis'] as const)('graceful shutdown (%s store)', (backend) => {
  let world: World;
  let redis: RedisHandle | undefined;
  let fixture: RelayFixture;
  let env: NodeJS.ProcessEnv;
  let relay: RelayProcess | undefined;
  let store: Store;

  beforeAll(async () => {
    world = await startWorld(standardScenarios());
    redis = backend === 'redis' ? await startRedis() : undefined;
    env = redis ? { SEALGATE_REDIS_URL: redis.url } : {};
    fixture = relayFixture({
      ...world.relayConfig(),
      queue: { path: 'queue', redis: { prefix: `shutdown-${process.pid}` } },
      admin: { port: 0 },
      delivery: { retrySchedule: ['1s'], pollInterval: '200ms', shutdownGrace: `${SHUTDOWN_GRACE_MS}ms` },
    });
    const { config } = loadConfig(fixture.configFile, { ...process.env, ...env });
    store = createStore(config, silentLogger());
    await store.open();
  });

  afterAll(async () => {
    await relay?.stop('SIGKILL');
    await store?.close();
    await redis?.stop();
    await world?.stop();
    fixture?.remove();
  });

  test('SIGTERM mid-delivery: stop accepting, finish what fits the grace, hand back the rest, exit 0; a restart delivers it', async () => {
    const slow = world.mx('mx1.slow.test');
    const fast = world.mx('mx1.tls13.test');
    fast.setReplies({ dataDelayMs: FAST_DATA_DELAY_MS });
    relay = await startRelayProcess(fixture.configFile, env);
    const port = relay.ports.smarthost!;

    const slowId = await submit(port, 'patient@slow.test', `slow-${backend}`);
    await until('the slow MX to hold its DATA reply', () => slow.events.find((e) => e.kind === 'data-delayed'), 15_000);
    const fastId = await submit(port, 'patient@tls13.test', `fast-${backend}`);
    await until('the fast MX to hold its DATA reply', () => fast.events.find((e) => e.kind === 'data-delayed'), 15_000);

    const exited = exitWithin(relay, SHUTDOWN_GRACE_MS + 15_000);
    // New connections are refused while the in-flight deliveries are still running.
    const refused = await until('the SMTP listener to close', async () => ((await probeConnect(port)) === 'refused' ? true : undefined), 2_000);
    expect(refused).toBe(true);
    expect(relay.child.exitCode).toBeNull();
    // A second SIGTERM (an impatient operator, a supervisor's repeat) is logged and does not cut the sequence short.
    relay.child.kill('SIGTERM');
    const logSoFar = relay.logs;
    await until('the repeated signal to be logged', () => logSoFar.find((l) => l.event === 'shutdown-in-progress'), 5_000);

    expect(await exited).toBe(0);
    const logs = relay.logs;
    relay = undefined;
    expect(logs.some((l) => l.event === 'stopped')).toBe(true);

    // The fast delivery finished before the exit.
    expect(fast.received.filter((m) => m.raw.includes(`fast-${backend}@sender.test`))).toHaveLength(1);
    const fastMessage = await store.getMessage(fastId);
    expect(fastMessage?.jobs.map((j) => j.state)).toEqual(['delivered']);

    // The slow one was cut off: the MX kept nothing, and the job is due again, not leased and not lost.
    await until('the slow MX to see the hang-up', () => slow.events.find((e) => e.kind === 'data-aborted'), 5_000);
    expect(slow.received).toHaveLength(0);
    const slowJob = (await store.getMessage(slowId))!.jobs[0]!;
    expect(['queued', 'deferred']).toContain(slowJob.state);
    expect(slowJob.lease).toBeUndefined();
    expect(slowJob.dueAt).toBeLessThanOrEqual(Date.now());
    expect(slowJob.recipients[0]!.state).toBe('pending');
    // A cut-off attempt is at most a deferral: a shutdown never ends a recipient.
    expect(slowJob.recipients[0]!.history.every((h) => h.outcome === 'deferred')).toBe(true);

    // The next start delivers it.
    slow.setReplies({ dataDelayMs: 0 });
    fast.setReplies({});
    relay = await startRelayProcess(fixture.configFile, env);
    const delivered = await until('the handed-back job to be delivered', finalMessage(store, slowId), 30_000);
    expect(delivered.jobs[0]!.recipients[0]!.state).toBe('delivered');
    expect(slow.received.filter((m) => m.raw.includes(`slow-${backend}@sender.test`))).toHaveLength(1);
    expect(await exitWithin(relay, 20_000)).toBe(0);
    relay = undefined;
  }, 90_000);
});
