import { relayFixture, runCli, startRelayProcess, type RelayFixture } from '../support/relay-process';

describe('sealgate start and dns.validating', () => {
  const fixtures: RelayFixture[] = [];
  afterAll(() => fixtures.forEach((fixture) => fixture.remove()));
  const fixture = (dns: Record<string, unknown>) => {
    const created = relayFixture({ dns: { timeout: '500ms', tries: 1, ...dns } });
    fixtures.push(created);
    return created;
  };

  test('a validating resolver off this host: start refused with exit 2, naming the keys', async () => {
    const { configFile } = fixture({ servers: ['192.0.2.53'], validating: true });
    const { code, stderr } = await runCli(['--config', configFile, 'start']);
    expect(code).toBe(2);
    expect(stderr).toContain('dns.servers');
    expect(stderr).toContain('192.0.2.53 is not a loopback address');
    expect(stderr).toContain('dns.trustRemoteValidator');
  });

  test('the start log says whether DANE is on, and with which resolvers', async () => {
    const on = await startRelayProcess(fixture({ servers: ['127.0.0.1:1'], validating: true }).configFile);
    const off = await startRelayProcess(fixture({ servers: ['127.0.0.1:1'] }).configFile);
    try {
      expect(on.logs.filter((entry) => entry.event === 'dns-dnssec')).toEqual([
        expect.objectContaining({ dane: true, resolvers: ['127.0.0.1:1'], systemResolvers: false, msg: 'DANE is on: DNSSEC answers validated by 127.0.0.1:1' }),
      ]);
      expect(off.logs.filter((entry) => entry.event === 'dns-dnssec')).toEqual([expect.objectContaining({ dane: false, msg: 'DANE is off (dns.validating is false)' })]);
    } finally {
      expect(await on.stop()).toBe(0);
      expect(await off.stop()).toBe(0);
    }
  });
});
