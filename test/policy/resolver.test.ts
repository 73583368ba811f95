import { startDnsServer, type DnsServer } from '../support/world/dns-server';
import { lookupMx } from '../../src/policy/mx';
import { classifyDnsError, createResolver, DnsError, type DnsResolver } from '../../src/policy/resolver';

const dnsConfig = (server: DnsServer) => ({ servers: [server.address], timeout: 500, tries: 1, cacheSize: 100 });

describe('DNS resolver (real DNS server on loopback)', () => {
  let server: DnsServer;
  let clock = 1_000_000;
  let resolver: DnsResolver;

  beforeAll(async () => {
    server = await startDnsServer({ zones: ['resolver.test'] });
    server.set('mx.resolver.test', 'MX', [{ preference: 10, exchange: 'mail.resolver.test' }]);
    server.set('mail.resolver.test', 'A', ['127.0.0.10'], 120);
    server.set('mail.resolver.test', 'AAAA', ['::1'], 120);
    server.set('v4only.resolver.test', 'A', ['127.0.0.11'], 120);
    server.set('_mta-sts.txt.resolver.test', 'TXT', [['v=STSv1; ', 'id=abc']]);
  });
  afterAll(() => server.close());
  beforeEach(() => {
    clock = 1_000_000;
    resolver = createResolver(dnsConfig(server), { now: () => clock, recordTtl: 60_000, negativeTtl: 30_000 });
    server.clearLog();
  });

  it('answers MX, TXT (strings joined), A and AAAA through the configured server', async () => {
    await expect(resolver.resolveMx('mx.resolver.test')).resolves.toEqual([{ exchange: 'mail.resolver.test', priority: 10 }]);
    await expect(resolver.resolveTxt('_mta-sts.txt.resolver.test')).resolves.toEqual(['v=STSv1; id=abc']);
    await expect(resolver.resolveAddresses('MAIL.resolver.test.')).resolves.toEqual(['127.0.0.10', '::1']);
    await expect(resolver.resolveAddresses('mail.resolver.test', { ipv6: false })).resolves.toEqual(['127.0.0.10']);
    await expect(resolver.resolveAddresses('v4only.resolver.test')).resolves.toEqual(['127.0.0.11']);
  });

  it('classifies NXDOMAIN as permanent and NODATA as no records', async () => {
    const nx = await resolver.resolveMx('nope.resolver.test').catch((e: unknown) => e);
    expect(nx).toBeInstanceOf(DnsError);
    expect(nx).toMatchObject({ kind: 'nxdomain', temporary: false });
    await expect(resolver.resolveMx('mail.resolver.test')).rejects.toMatchObject({ kind: 'nodata', temporary: false });
    await expect(resolver.resolveAddresses('nope.resolver.test')).rejects.toMatchObject({ kind: 'nxdomain' });
  });

  it.each(['servfail', 'refused', 'timeout'] as const)('classifies %s as temporary and does not cache it', async (failure) => {
    server.set('flaky.resolver.test', 'MX', [{ preference: 5, exchange: 'mail.resolver.test' }]);
    server.fail('flaky.resolver.test', failure);
    await expect(resolver.resolveMx('flaky.resolver.test')).rejects.toMatchObject({ kind: 'temporary', temporary: true });
    server.fail('flaky.resolver.test', null);
    await expect(resolver.resolveMx('flaky.resolver.test')).resolves.toEqual([{ exchange: 'mail.resolver.test', priority: 5 }]);
  });

  it('caches answers within their TTL and asks again after it', async () => {
    await resolver.resolve4('mail.resolver.test');
    await resolver.resolve4('mail.resolver.test');
    expect(server.queriesFor('mail.resolver.test', 'A')).toHaveLength(1);
    clock += 121_000;
    await resolver.resolve4('mail.resolver.test');
    expect(server.queriesFor('mail.resolver.test', 'A')).toHaveLength(2);

    await resolver.resolveMx('mx.resolver.test');
    clock += 59_000;
    await resolver.resolveMx('mx.resolver.test');
    expect(server.queriesFor('mx.resolver.test', 'MX')).toHaveLength(1);
    clock += 2_000;
    await resolver.resolveMx('mx.resolver.test');
    expect(server.queriesFor('mx.resolver.test', 'MX')).toHaveLength(2);
  });

  it('sends one query for concurrent lookups of the same name', async () => {
    await Promise.all([resolver.resolveMx('mx.resolver.test'), resolver.resolveMx('MX.resolver.test.'), resolver.resolveMx('mx.resolver.test')]);
    expect(server.queriesFor('mx.resolver.test', 'MX')).toHaveLength(1);
  });

  it('caches negative answers briefly', async () => {
    await expect(resolver.resolveMx('gone.resolver.test')).rejects.toMatchObject({ kind: 'nxdomain' });
    server.set('gone.resolver.test', 'MX', [{ preference: 1, exchange: 'mail.resolver.test' }]);
    await expect(resolver.resolveMx('gone.resolver.test')).rejects.toMatchObject({ kind: 'nxdomain' });
    clock += 31_000;
    await expect(resolver.resolveMx('gone.resolver.test')).resolves.toHaveLength(1);
  });

  it('answers every hit of a cached negative answer with the one error it was cached with, until it expires', async () => {
    const miss = (name: string) =>
      resolver.resolveTxt(name).then(
        () => undefined,
        (error: unknown) => error,
      );
    const first = await miss('_mta-sts.none.resolver.test');
    expect(first).toBeInstanceOf(DnsError);
    expect(first).toMatchObject({ kind: 'nxdomain', query: 'TXT _mta-sts.none.resolver.test', code: 'ENOTFOUND', temporary: false });
    expect(await miss('_MTA-STS.none.resolver.test.')).toBe(first);
    clock += 31_000;
    const later = await miss('_mta-sts.none.resolver.test');
    expect(later).not.toBe(first);
    expect(later).toMatchObject({ kind: 'nxdomain', query: 'TXT _mta-sts.none.resolver.test' });
  });

  it('sees a published null MX ("0 .") as null MX and a name without MX as implicit MX', async () => {
    server.set('null.resolver.test', 'MX', [{ preference: 0, exchange: '.' }]);
    expect(await lookupMx(resolver, 'null.resolver.test')).toEqual({ kind: 'null-mx' });
    expect(await lookupMx(resolver, 'v4only.resolver.test')).toEqual({ kind: 'hosts', hosts: [{ host: 'v4only.resolver.test', preference: 0, implicit: true }] });
  });

  it('offers a dns.lookup-compatible function for sockets', async () => {
    const one = await new Promise((resolve, reject) => resolver.lookup('mail.resolver.test', { family: 4 }, (err, address, family) => (err ? reject(err) : resolve({ address, family }))));
    expect(one).toEqual({ address: '127.0.0.10', family: 4 });
    const all = await new Promise((resolve, reject) => resolver.lookup('mail.resolver.test', { all: true }, (err, addresses) => (err ? reject(err) : resolve(addresses))));
    expect(all).toEqual([
      { address: '127.0.0.10', family: 4 },
      { address: '::1', family: 6 },
    ]);
    const err = await new Promise<NodeJS.ErrnoException | null>((resolve) => resolver.lookup('nope.resolver.test', {}, (e) => resolve(e)));
    expect(err?.code).toBe('ENOTFOUND');
  });
});

describe('classifyDnsError', () => {
  it.each([
    ['ENOTFOUND', 'nxdomain'],
    ['ENODATA', 'nodata'],
    ['ESERVFAIL', 'temporary'],
    ['ETIMEOUT', 'temporary'],
    ['EREFUSED', 'temporary'],
    ['ECONNREFUSED', 'temporary'],
    ['EBADRESP', 'temporary'],
  ])('%s → %s', (code, kind) => {
    expect(classifyDnsError(Object.assign(new Error(code), { code })).kind).toBe(kind);
  });
});
