import { ConfigError, parseConfig } from '../../src/config/load';
import { isLoopbackServer } from '../../src/config/schema';
import { classifyStartError } from '../../src/cli/startup';
import { dnssecSummary, validatingServers } from '../../src/policy/resolver';
import { configErrorOf } from './config-error';

const listeners = [{ name: 'sub', port: 2587, tls: 'starttls', auth: 'required' }];
const parse = (dns: Record<string, unknown>, env: Record<string, string> = {}) => parseConfig({ listeners, dns }, env, '/srv/sealgate');

describe('dns.validating and dns.trustRemoteValidator', () => {
  test('both default to false: DANE is off and no resolver is refused', () => {
    const { dns } = parse({ servers: ['192.0.2.53'] });
    expect(dns).toMatchObject({ validating: false, trustRemoteValidator: false });
  });

  test('a validating resolver off this host is refused, naming the keys and the server', () => {
    const message = configErrorOf(() => parse({ validating: true, servers: ['127.0.0.1:5353', '192.0.2.53', '[2001:db8::53]:53'] }));
    expect(message).toContain('dns.servers');
    expect(message).toContain('dns.validating');
    expect(message).toContain('dns.trustRemoteValidator');
    expect(message).toContain('192.0.2.53, [2001:db8::53]:53 are not loopback addresses');
    expect(message).not.toContain('127.0.0.1:5353');
  });

  test('the same server is accepted with trustRemoteValidator, and loopback resolvers without it', () => {
    expect(parse({ validating: true, trustRemoteValidator: true, servers: ['192.0.2.53'] }).dns.validating).toBe(true);
    expect(parse({ validating: true, servers: ['127.0.0.1', '127.53.0.1:53', '::1', '[::1]:5353', '[::ffff:127.0.0.1]:53'] }).dns.servers).toHaveLength(5);
  });

  test('a remote server from SEALGATE_DNS_SERVERS is refused the same way', () => {
    expect(configErrorOf(() => parse({ validating: true }, { SEALGATE_DNS_SERVERS: '127.0.0.1,10.0.0.2' }))).toMatch(/10\.0\.0\.2 is not a loopback address/);
  });

  test.each([
    ['127.0.0.1', true],
    ['127.255.255.254:53', true],
    ['::1', true],
    ['[::1]:53', true],
    ['[0:0:0:0:0:0:0:1]:53', true],
    ['::ffff:127.0.0.1', true],
    ['128.0.0.1', false],
    ['10.0.0.1', false],
    ['::', false],
    ['[::2]:53', false],
    ['::ffff:10.0.0.1', false],
    ['not-an-ip', false],
  ])('isLoopbackServer(%s) is %s', (server, loopback) => {
    expect(isLoopbackServer(server)).toBe(loopback);
  });
});

describe('with dns.servers empty the system resolvers are checked at start', () => {
  const dns = (overrides: Record<string, unknown>) => parse({ validating: true, ...overrides }).dns;

  test('a system resolver off this host refuses the start with a config error (exit 2)', () => {
    let thrown: unknown;
    try {
      dnssecSummary(dns({}), () => ['127.0.0.53', '192.0.2.1']);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    expect((thrown as Error).message).toMatch(/192\.0\.2\.1 is not a loopback address.*system's resolvers/);
    expect(classifyStartError(thrown, parse({}))).toBe('usage');
  });

  test('loopback system resolvers are used, and trustRemoteValidator accepts remote ones', () => {
    expect(validatingServers(dns({}), () => ['127.0.0.53'])).toEqual(['127.0.0.53']);
    expect(validatingServers(dns({ trustRemoteValidator: true }), () => ['192.0.2.1'])).toEqual(['192.0.2.1']);
    expect(() => validatingServers(dns({}), () => [])).toThrow(/no resolver to ask/);
  });

  test('the start summary says whether DANE is on and with which resolvers', () => {
    expect(dnssecSummary(dns({ servers: ['127.0.0.1:5353'] }), () => ['192.0.2.1'])).toEqual({ dane: true, resolvers: ['127.0.0.1:5353'], systemResolvers: false, trustRemoteValidator: false });
    expect(dnssecSummary(parse({}).dns, () => ['192.0.2.1'])).toEqual({ dane: false, resolvers: ['192.0.2.1'], systemResolvers: true, trustRemoteValidator: false });
  });
});
