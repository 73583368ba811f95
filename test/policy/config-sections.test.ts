import { ConfigError, parseConfig } from '../../src/config/load';
import { parseRoute } from '../../src/config/schema';

const base = { listeners: [{ name: 's', port: 0, tls: 'starttls', auth: 'required' }] };

describe('config sections outbound, domains, mtaSts', () => {
  it('has safe defaults', () => {
    const config = parseConfig(base, {}, '/etc/sealgate');
    expect(config.outbound).toEqual({
      port: 25,
      defaultLevel: 'encrypt',
      maxMxHosts: 5,
      maxAddresses: 10,
      ipv6: true,
      connectTimeout: 30_000,
      greetingTimeout: 60_000,
      socketTimeout: 300_000,
      extraCaFile: null,
    });
    expect(config.domains).toEqual({});
    expect(config.mtaSts).toEqual({ enabled: true, extraCaFile: null, connectTimeout: 10_000, fetchTimeout: 60_000, port: 443, maxPolicySize: 65_536 });
  });

  it('accepts levels, routes, durations and sizes, and resolves CA files against the config folder', () => {
    const config = parseConfig(
      {
        ...base,
        outbound: { port: 2525, defaultLevel: 'verify', extraCaFile: 'ca/extra.pem', connectTimeout: '5s' },
        domains: { 'partner.example': { level: 'portal' }, 'hub.example': { route: 'smtp.hub.example:587' } },
        mtaSts: { extraCaFile: '/abs/ca.pem', maxPolicySize: '32KiB', fetchTimeout: '20s' },
      },
      {},
      '/etc/sealgate',
    );
    expect(config.outbound).toMatchObject({ port: 2525, defaultLevel: 'verify', extraCaFile: '/etc/sealgate/ca/extra.pem', connectTimeout: 5_000 });
    expect(config.domains['hub.example']).toEqual({ route: 'smtp.hub.example:587' });
    expect(config.mtaSts).toMatchObject({ extraCaFile: '/abs/ca.pem', maxPolicySize: 32 * 1024, fetchTimeout: 20_000 });
  });

  it.each([
    [{ outbound: { defaultLevel: 'none' } }, /outbound\.defaultLevel/],
    [{ outbound: { prot: 25 } }, /outbound\.prot: unknown key/],
    [{ domains: { 'a.example': { level: 'loose' } } }, /domains\.a\.example\.level/],
    [{ domains: { 'a.example': { route: 'bad host:x' } } }, /route/],
    [{ domains: { 'a.example': { rout: 'x' } } }, /unknown key/],
    [{ mtaSts: { enabled: 'yes' } }, /mtaSts\.enabled/],
  ])('refuses %j', (extra, message) => {
    expect(() => parseConfig({ ...base, ...extra }, {}, '/tmp')).toThrow(ConfigError);
    expect(() => parseConfig({ ...base, ...extra }, {}, '/tmp')).toThrow(message);
  });

  it('parses routes', () => {
    expect(parseRoute('smtp.Hub.example')).toEqual({ host: 'smtp.hub.example', port: 25 });
    expect(parseRoute('smtp.hub.example:2525')).toEqual({ host: 'smtp.hub.example', port: 2525 });
    expect(parseRoute('192.0.2.1:26')).toEqual({ host: '192.0.2.1', port: 26 });
    expect(parseRoute('[2001:db8::1]:27')).toEqual({ host: '2001:db8::1', port: 27 });
    for (const bad of ['', 'host:0', 'host:70000', 'a..b', '-a.example', 'a b']) expect(parseRoute(bad)).toBeUndefined();
  });
});
