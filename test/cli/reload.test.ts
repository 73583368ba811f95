import { readFileSync, writeFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { freePort } from '../support/ports';
import { relayFixture, runCli, startRelayProcess, type RelayFixture, type RelayProcess } from '../support/relay-process';
import { until } from '../support/wait';

/**
 * `sealgate reload` against a running relay process: through the admin API (the answer says what changed or
 * which key needs a restart), the CLI's warning while the file differs from the running config, `stats`
 * showing the running digest, and the SIGHUP fallback when the admin API is off.
 */

const TOKEN = 'reload-cli-token-0123456789';

function edit(fixture: RelayFixture, change: (config: Record<string, any>) => void): void {
  const config = parse(readFileSync(fixture.configFile, 'utf8')) as Record<string, any>;
  change(config);
  writeFileSync(fixture.configFile, stringify(config));
}

describe('with the admin API', () => {
  let fixture: RelayFixture;
  let relay: RelayProcess;
  let adminPort: number;
  const cli = (...args: string[]) => runCli(['--config', fixture.configFile, ...args]);

  beforeAll(async () => {
    adminPort = await freePort();
    fixture = relayFixture({ admin: { port: adminPort, tokens: [{ name: 'ops', token: TOKEN }] } });
    relay = await startRelayProcess(fixture.configFile);
  }, 30_000);

  afterAll(async () => {
    await relay?.stop();
    fixture?.remove();
  });

  test('an edited file is flagged until reloaded; reload answers what changed; stats shows the running digest', async () => {
    expect((await cli('queue', 'list')).stderr).toBe('');
    edit(fixture, (c) => (c.domains = { 'partner.example': { level: 'portal' } }));

    const stale = await cli('queue', 'list');
    expect(stale.code).toBe(0);
    expect(stale.stderr).toMatch(/warning: .*sealgate\.yaml differs from the configuration the running relay uses .*not in force until `sealgate reload`/);

    const reload = await cli('reload');
    expect({ code: reload.code, stderr: reload.stderr }).toEqual({ code: 0, stderr: '' });
    expect(reload.stdout).toMatch(/^reloaded: config sha256:[0-9a-f]{64} \(was sha256:[0-9a-f]{64}\)\nchanged: domains\.partner\.example\n$/);
    expect(relay.logs.find((l) => l.event === 'config-reloaded')).toMatchObject({ changed: ['domains.partner.example'] });

    expect((await cli('queue', 'list')).stderr).toBe('');
    const stats = JSON.parse((await cli('stats', '--json')).stdout) as { relay: { digest: string; version: string } };
    const health = (await (await fetch(`http://127.0.0.1:${adminPort}/healthz`)).json()) as { config: { digest: string } };
    expect(stats.relay).toMatchObject({ url: `http://127.0.0.1:${adminPort}`, digest: health.config.digest, version: expect.any(String) });
    expect(reload.stdout).toContain(health.config.digest);
  }, 60_000);

  test('a change that needs a restart is refused with exit 2 naming the key; the relay keeps its config', async () => {
    const before = (await (await fetch(`http://127.0.0.1:${adminPort}/healthz`)).json()) as { config: { digest: string } };
    edit(fixture, (c) => (c.queue.path = 'elsewhere'));
    const refused = await cli('reload');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/reload refused, nothing changed: queue\.path cannot change while the relay runs/);
    const after = (await (await fetch(`http://127.0.0.1:${adminPort}/healthz`)).json()) as { config: { digest: string } };
    expect(after.config.digest).toBe(before.config.digest);
    expect(relay.logs.find((l) => l.event === 'config-reload-refused')).toMatchObject({ err: expect.stringMatching(/queue\.path/) });
    expect(relay.child.exitCode).toBeNull();
  }, 60_000);
});

test('without an admin API, `sealgate reload` sends SIGHUP to the relay holding the spool', async () => {
  const fixture = relayFixture({ admin: { enabled: false } });
  const relay = await startRelayProcess(fixture.configFile);
  try {
    edit(fixture, (c) => (c.limits.maxRecipients = 7));
    const reload = await runCli(['--config', fixture.configFile, 'reload']);
    expect(reload.code).toBe(0);
    expect(reload.stdout).toMatch(new RegExp(`^sent SIGHUP to the relay \\(PID ${relay.child.pid}\\)`));
    const reloaded = await until('the config-reloaded log line', () => relay.logs.find((l) => l.event === 'config-reloaded'), 10_000);
    expect(reloaded).toMatchObject({ changed: ['limits.maxRecipients'] });
    expect(relay.child.exitCode).toBeNull();
  } finally {
    await relay.stop();
    fixture.remove();
  }
}, 60_000);
