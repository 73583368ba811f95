import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import nodemailer from 'nodemailer';
import { parse, stringify } from 'yaml';
import { startRedis, type RedisHandle } from '../support/redis-server';
import { relayFixture, runCli, SEALGATE_BIN, startRelayProcess, type RelayFixture, type RelayProcess } from '../support/relay-process';
import { freePort } from '../support/ports';

/**
 * Start-up of the real relay process: a spool lock left behind never blocks a start (even when its PID now
 * belongs to an unrelated live process), a second relay on the same spool is refused with exit 2, and every
 * fatal start-up failure ends the process with a non-zero code and its cause instead of leaving it running.
 */

/** Bound for "exits promptly": generous for a loaded machine, far below "hangs for ever". */
const EXIT_BOUND_MS = 20_000;
/** queue.startupTimeout for the retry tests: long enough for several tries, short enough for CI. */
const STARTUP_TIMEOUT_MS = 4_000;

function jsonLines(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Sends one message through the trusted-network listener; the final reply. */
async function submit(port: number): Promise<string> {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port, requireTLS: true, tls: { rejectUnauthorized: false } });
  try {
    const info = await transport.sendMail({
      envelope: { from: 'clinic@sender.test', to: ['patient@example.test'] },
      raw: 'From: clinic@sender.test\r\nTo: patient@example.test\r\nSubject: start-up\r\n\r\nbody\r\n',
    });
    return info.response;
  } finally {
    transport.close();
  }
}

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

  test('a Redis that stays down: each try logged (attempt, wait, cause), then exit 1 within queue.startupTimeout with the cause', async () => {
    const port = await freePort();
    fixture = relayFixture({ queue: { backend: 'redis', startupTimeout: `${STARTUP_TIMEOUT_MS}ms`, redis: { url: `redis://sealgate:hunter2-secret@127.0.0.1:${port}` } } });
    const started = Date.now();
    const run = await runCli(['--config', fixture.configFile, 'start'], { timeoutMs: STARTUP_TIMEOUT_MS + EXIT_BOUND_MS });
    const elapsed = Date.now() - started;
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`Redis queue at 127.0.0.1:${port} is unreachable (connect ECONNREFUSED`);
    const logs = jsonLines(run.stdout);
    const tries = logs.filter((l) => l.event === 'start-retry');
    expect(tries.length).toBeGreaterThanOrEqual(2);
    tries.forEach((t, i) => {
      expect(t.attempt).toBe(i + 1);
      expect(t.waitMs).toEqual(expect.any(Number));
      expect(String(t.err)).toContain('ECONNREFUSED');
    });
    const failed = logs.find((l) => l.event === 'start-failed');
    expect(failed).toMatchObject({ attempts: tries.length + 1, exitCode: 1 });
    // It kept trying for the whole timeout, and gave up soon after (the bound is generous for a loaded machine).
    expect(elapsed).toBeGreaterThanOrEqual(STARTUP_TIMEOUT_MS);
    expect(elapsed).toBeLessThan(STARTUP_TIMEOUT_MS + EXIT_BOUND_MS);
    expect(logs.find((l) => l.event === 'config-loaded')).toMatchObject({ backend: 'redis', redis: `redis://sealgate:***@127.0.0.1:${port}` });
    expect(run.stdout + run.stderr).not.toContain('hunter2-secret');
  }, 60_000);

  test('SIGTERM during the retries ends the process at once with exit 0 (stopped), not after queue.startupTimeout', async () => {
    const port = await freePort();
    fixture = relayFixture({ queue: { backend: 'redis', startupTimeout: '10m', redis: { url: `redis://127.0.0.1:${port}` } } });
    const child = spawn(process.execPath, [SEALGATE_BIN, '--config', fixture.configFile, 'start'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const logs: Array<Record<string, unknown>> = [];
    let buffered = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const entry of jsonLines(lines.join('\n'))) {
        logs.push(entry);
        if (entry.event === 'start-retry' && entry.attempt === 1) child.kill('SIGTERM');
      }
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 40_000);
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    clearTimeout(timer);
    expect(code).toBe(0);
    expect(logs.find((l) => l.event === 'shutdown')).toMatchObject({ signal: 'SIGTERM' });
    expect(logs.some((l) => l.event === 'stopped')).toBe(true);
    expect(logs.some((l) => l.event === 'start-failed' || l.event === 'relay-started')).toBe(false);
  }, 60_000);

  test('a Redis that comes up while the relay retries: the relay starts and accepts mail', async () => {
    redis ??= await startRedis();
    if (redis.external) return; // pause/resume need a server started here
    await redis.pause();
    fixture = relayFixture({ queue: { backend: 'redis', startupTimeout: '60s', redis: { url: redis.url, prefix: redis.prefix } } });
    let resumed: Promise<void> | undefined;
    const relay = await startRelayProcess(fixture.configFile, {}, 60_000, (entry) => {
      if (entry.event === 'start-retry' && !resumed) resumed = redis!.resume();
    });
    try {
      await resumed;
      expect(relay.logs.filter((l) => l.event === 'start-retry').length).toBeGreaterThanOrEqual(1);
      expect(await submit(relay.ports.smarthost!)).toMatch(/^250 /);
      expect(await relay.stop()).toBe(0);
    } finally {
      await relay.stop('SIGKILL');
    }
  }, 90_000);
});

describe('an unwritable queue folder at start', () => {
  let fixture: RelayFixture;
  afterEach(() => fixture.remove());

  // A path under a regular file fails with ENOTDIR for every user, root included (chmod 000 does not stop root).
  test('is retried until queue.startupTimeout, then exit 1 naming the folder', async () => {
    fixture = relayFixture();
    const blocker = path.join(fixture.dir, 'not-a-folder');
    await fs.writeFile(blocker, 'a regular file where the spool folder should be\n');
    const config = parse(await fs.readFile(fixture.configFile, 'utf8')) as { queue: Record<string, unknown> };
    config.queue = { path: path.join(blocker, 'queue'), startupTimeout: `${STARTUP_TIMEOUT_MS}ms` };
    await fs.writeFile(fixture.configFile, stringify(config));
    const run = await runCli(['--config', fixture.configFile, 'start'], { timeoutMs: STARTUP_TIMEOUT_MS + EXIT_BOUND_MS });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('ENOTDIR');
    const logs = jsonLines(run.stdout);
    expect(logs.filter((l) => l.event === 'start-retry').length).toBeGreaterThanOrEqual(2);
    expect(logs.find((l) => l.event === 'start-failed')).toMatchObject({ exitCode: 1, kind: 'retry' });
    expect(logs.some((l) => l.event === 'relay-started')).toBe(false);
  }, 60_000);
});
