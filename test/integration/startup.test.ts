import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { startRedis, type RedisHandle } from '../support/redis-server';
import { relayFixture, runCli, startRelayProcess, type RelayFixture, type RelayProcess } from '../support/relay-process';
import { freePort } from '../support/ports';

/**
 * Start-up of the real relay process: a spool lock left behind never blocks a start (even when its PID now
 * belongs to an unrelated live process), a second relay on the same spool is refused with exit 2, and every
 * fatal start-up failure ends the process with a non-zero code and its cause instead of leaving it running.
 */

/** Bound for "exits promptly": generous for a loaded machine, far below "hangs for ever". */
const EXIT_BOUND_MS = 20_000;

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  process.kill(child.pid!, 'SIGKILL');
  await exited;
}

describe('file spool lock at start', () => {
  let fixture: RelayFixture;
  let relay: RelayProcess | undefined;
  let sleeper: ChildProcess | undefined;

  beforeEach(() => {
    fixture = relayFixture();
  });

  afterEach(async () => {
    await relay?.stop('SIGKILL');
    relay = undefined;
    if (sleeper) await stopChild(sleeper);
    sleeper = undefined;
    fixture.remove();
  });

  test.each([
    ['a PID alone (older lock format)', (pid: number) => `${pid}`],
    ['a PID with another start time', (pid: number) => `${pid} 1`],
  ])(
    'a stale relay.pid naming a live unrelated process (%s) does not block the start',
    async (_name, content) => {
      sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
      await fs.mkdir(fixture.queuePath, { recursive: true });
      await fs.writeFile(path.join(fixture.queuePath, 'relay.pid'), content(sleeper.pid!));
      relay = await startRelayProcess(fixture.configFile);
      expect(relay.ports.smarthost).toBeGreaterThan(0);
      // The lock is now the new relay's.
      expect((await fs.readFile(path.join(fixture.queuePath, 'relay.pid'), 'utf8')).split(' ')[0]).toBe(String(relay.child.pid));
    },
    60_000,
  );

  test('a second relay on the same spool is refused with exit 2, naming the running one', async () => {
    relay = await startRelayProcess(fixture.configFile);
    const second = await runCli(['--config', fixture.configFile, 'start'], { timeoutMs: EXIT_BOUND_MS });
    expect(second.code).toBe(2);
    expect(second.stderr).toContain(`already used by another Sealgate relay (PID ${relay.child.pid})`);
    // The first one still holds its lock and runs.
    expect(relay.child.exitCode).toBeNull();
    expect((await fs.readFile(path.join(fixture.queuePath, 'relay.pid'), 'utf8')).split(' ')[0]).toBe(String(relay.child.pid));
  }, 60_000);
});

describe('fatal start-up failures with the Redis store', () => {
  let fixture: RelayFixture | undefined;
  let redis: RedisHandle | undefined;

  afterEach(() => {
    fixture?.remove();
    fixture = undefined;
  });

  afterAll(async () => {
    await redis?.stop();
  });

  test('onWeakDurability: refuse against a Redis with appendfsync everysec exits non-zero with the cause', async () => {
    redis = await startRedis();
    if (redis.external) return; // CONFIG SET on a shared server would change it for everyone.
    const admin = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await admin.connect();
    try {
      await admin.config('SET', 'appendfsync', 'everysec');
      fixture = relayFixture({ queue: { backend: 'redis', redis: { url: redis.url, prefix: redis.prefix, onWeakDurability: 'refuse' } } });
      const run = await runCli(['--config', fixture.configFile, 'start'], { timeoutMs: EXIT_BOUND_MS });
      expect(run.code).toBe(1);
      expect(run.stderr).toContain('appendfsync is "everysec"');
    } finally {
      await admin.config('SET', 'appendfsync', 'always');
      admin.disconnect();
    }
  }, 60_000);

  test('a Redis URL pointing at a closed port exits non-zero with the cause', async () => {
    const port = await freePort();
    fixture = relayFixture({ queue: { backend: 'redis', redis: { url: `redis://127.0.0.1:${port}` } } });
    const run = await runCli(['--config', fixture.configFile, 'start'], { timeoutMs: EXIT_BOUND_MS });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/ECONNREFUSED|unreachable/);
  }, 60_000);
});
