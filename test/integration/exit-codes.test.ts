import net from 'node:net';
import { VERSION } from '../../src/config/version';
import { freePort } from '../support/ports';
import { relayFixture, runCli, startRelayProcess, type RelayFixture, type RelayProcess } from '../support/relay-process';
import { until } from '../support/wait';

/**
 * Exit codes of `sealgate start` and the CLI: 2 for every config or usage error (checked here: a missing
 * certificate file, a listener port in use, a Redis URL with another scheme, an unknown option; the spool held by
 * another relay is in startup.test.ts), 1 for runtime failures; and the signals: SIGQUIT stops through the
 * shutdown sequence, SIGHUP and SIGUSR2 never stop the relay.
 */

/** Only a guard against a hang: a CLI start costs seconds on a loaded CI machine. */
const EXIT_BOUND_MS = 45_000;

describe('exit codes', () => {
  let fixture: RelayFixture | undefined;
  afterEach(() => {
    fixture?.remove();
    fixture = undefined;
  });

  test('`sealgate --version` and `-V` print the version and exit 0', async () => {
    for (const flag of ['--version', '-V']) {
      const run = await runCli([flag], { timeoutMs: EXIT_BOUND_MS });
      expect({ flag, code: run.code, stdout: run.stdout.trim() }).toEqual({ flag, code: 0, stdout: VERSION });
    }
  }, 120_000);

  test('an unknown option is a usage error: exit 2', async () => {
    const run = await runCli(['start', '--no-such-option'], { timeoutMs: EXIT_BOUND_MS });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("unknown option '--no-such-option'");
  }, 120_000);

  test('a missing tls.cert file: exit 2 naming the key, no retries', async () => {
    fixture = relayFixture({ tls: { cert: 'missing-cert.pem', key: 'missing-key.pem' } });
    const run = await runCli(['--config', fixture.configFile, 'start'], { timeoutMs: EXIT_BOUND_MS });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('tls.cert');
    expect(run.stdout).not.toContain('"start-retry"');
  }, 120_000);

  test('a listener port in use: exit 2, no retries', async () => {
    const blocker = net.createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
    try {
      fixture = relayFixture({ listeners: [{ name: 'smarthost', host: '127.0.0.1', port, tls: 'starttls', auth: 'optional', trustedNetworks: ['127.0.0.0/8'] }] });
      const run = await runCli(['--config', fixture.configFile, 'start'], { timeoutMs: EXIT_BOUND_MS });
      expect(run.code).toBe(2);
      expect(run.stderr).toContain('EADDRINUSE');
      expect(run.stdout).not.toContain('"start-retry"');
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  }, 120_000);

  test('a Redis URL with another scheme (config file or SEALGATE_REDIS_URL): exit 2 naming queue.redis.url, password not shown', async () => {
    fixture = relayFixture({ queue: { backend: 'redis', redis: { url: 'http://127.0.0.1:6379' } } });
    const [fromFile, fromEnv] = await Promise.all([
      runCli(['--config', fixture.configFile, 'start'], { timeoutMs: EXIT_BOUND_MS }),
      runCli(['--config', fixture.configFile, 'start'], { timeoutMs: EXIT_BOUND_MS, env: { SEALGATE_REDIS_URL: 'unix://sealgate:hunter2-secret@localhost/run/redis.sock' } }),
    ]);
    expect(fromFile.code).toBe(2);
    expect(fromFile.stderr).toContain('queue.redis.url');
    expect(fromEnv.code).toBe(2);
    expect(fromEnv.stderr).toContain('queue.redis.url');
    expect(fromEnv.stderr + fromEnv.stdout).not.toContain('hunter2-secret');
  }, 120_000);
});

describe('signals', () => {
  let fixture: RelayFixture;
  let relay: RelayProcess | undefined;

  beforeAll(() => {
    fixture = relayFixture();
  });

  afterAll(async () => {
    await relay?.stop('SIGKILL');
    fixture.remove();
  });

  function greeting(port: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.setTimeout(5_000, () => socket.destroy(new Error('no greeting within 5 s')));
      socket.once('data', (data) => {
        socket.destroy();
        resolve(data.toString('latin1'));
      });
      socket.once('error', reject);
    });
  }

  test('SIGUSR2 and SIGHUP leave the relay running; SIGQUIT stops it through the shutdown sequence (stopped, exit 0)', async () => {
    relay = await startRelayProcess(fixture.configFile);
    const port = relay.ports.smarthost!;
    const logs = relay.logs;

    relay.child.kill('SIGUSR2');
    await until('SIGUSR2 to be logged', () => logs.find((l) => l.event === 'signal-ignored' && l.signal === 'SIGUSR2'), 10_000);
    expect(await greeting(port)).toMatch(/^220 /);

    relay.child.kill('SIGHUP');
    await until('the reload to be logged', () => logs.find((l) => l.event === 'config-reloaded'), 10_000);
    expect(relay.child.exitCode).toBeNull();
    expect(await greeting(port)).toMatch(/^220 /);

    expect(await relay.stop('SIGQUIT')).toBe(0);
    expect(logs.find((l) => l.event === 'shutdown')).toMatchObject({ signal: 'SIGQUIT' });
    expect(logs.some((l) => l.event === 'stopped')).toBe(true);
    relay = undefined;
  }, 120_000);
});
