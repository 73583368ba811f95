import type { Answer } from 'dns-packet';
import { lookupMx } from '../../src/policy/mx';
import { createResolver, DnsError, type DnsResolver } from '../../src/policy/resolver';
import { startStubServer, type StubServer } from './dnssec-stub-server';

const TLSA_DATA = Buffer.from('0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6', 'hex');

const rr = (name: string, type: string, data: unknown, ttl = 300) => ({ name, type, ttl, class: 'IN', data }) as unknown as Answer;

describe('validating resolver (dns.validating) against a stub resolver on 127.0.0.1', () => {
  let server: StubServer;
  let clock = 1_000_000;
  let resolver: DnsResolver;

  const config = (overrides: Partial<{ servers: string[]; timeout: number; tries: number }> = {}) => ({
    servers: [server.address],
    timeout: 300,
    tries: 1,
    cacheSize: 100,
    validating: true,
    trustRemoteValidator: false,
    ...overrides,
  });

  beforeAll(async () => {
    server = await startStubServer();
    server.set('signed.test', 'MX', { ad: true, answers: [rr('signed.test', 'MX', { preference: 10, exchange: 'mx.signed.test' }, 120)] });
    server.set('unsigned.test', 'MX', { ad: false, answers: [rr('unsigned.test', 'MX', { preference: 5, exchange: 'mx.unsigned.test' })] });
    server.set('null.test', 'MX', { ad: true, answers: [rr('null.test', 'MX', { preference: 0, exchange: '.' })] });
    server.set('mx.signed.test', 'A', { ad: true, answers: [rr('mx.signed.test', 'A', '127.0.0.20', 90)] });
    server.set('mx.signed.test', 'AAAA', { ad: true, rcode: 'NOERROR', answers: [] });
    server.set('mx.signed.test', 'MX', { ad: true, rcode: 'NOERROR', answers: [] });
    server.set('_25._tcp.mx.signed.test', 'TLSA', {
      ad: true,
      answers: [
        rr('_25._tcp.mx.signed.test', 'TLSA', { usage: 3, selector: 1, matchingType: 1, certificate: TLSA_DATA }),
        rr('_25._tcp.mx.signed.test', 'TLSA', { usage: 2, selector: 0, matchingType: 1, certificate: Buffer.from([0xab, 0xcd]) }),
      ],
    });
    server.set('_25._tcp.bogus.signed.test', 'TLSA', { rcode: 'SERVFAIL' });
    server.set('_25._tcp.none.signed.test', 'TLSA', { ad: true, rcode: 'NXDOMAIN' });
    server.set('_25._tcp.insecure.test', 'TLSA', { ad: false, rcode: 'NXDOMAIN' });
    // A CNAME'd MX host (RFC 7672 §2.2.2): alias → alias2 → target, all in the answer section.
    server.set('alias.signed.test', 'A', {
      ad: true,
      answers: [rr('alias.signed.test', 'CNAME', 'alias2.other.test', 600), rr('alias2.other.test', 'CNAME', 'target.other.test', 60), rr('target.other.test', 'A', '127.0.0.30', 300)],
    });
    server.set('alias.signed.test', 'AAAA', { ad: true, answers: [rr('alias.signed.test', 'CNAME', 'alias2.other.test', 600), rr('alias2.other.test', 'CNAME', 'target.other.test', 60)] });
    server.set('half.test', 'A', { ad: true, answers: [rr('half.test', 'A', '127.0.0.40')] });
    server.set('half.test', 'AAAA', { ad: false, answers: [rr('half.test', 'AAAA', '::1')] });
    server.set('big.test', 'TXT', { ad: true, behaviour: 'truncate', answers: [rr('big.test', 'TXT', [Buffer.from('v=STSv1; '), Buffer.from('id=big')])] });
    server.set('stray.test', 'A', { ad: false, behaviour: 'stray-first', answers: [rr('stray.test', 'A', '127.0.0.50')] });
    server.set('garbage.test', 'A', { ad: false, behaviour: 'garbage-first', answers: [rr('garbage.test', 'A', '127.0.0.51')] });
    server.set('silent.test', 'MX', { behaviour: 'drop' });
    server.set('malformed.test', 'MX', { behaviour: 'garbage-only' });
    server.set('refused.test', 'MX', { rcode: 'REFUSED' });
  });
  afterAll(() => server.close());
  beforeEach(() => {
    clock = 1_000_000;
    resolver = createResolver(config(), { now: () => clock, negativeTtl: 30_000 });
    server.queries.splice(0);
  });

  it('says it validates, asks with RD, AD and the DO bit, and reads the AD bit of the answer', async () => {
    expect(resolver.validating).toBe(true);
    await expect(resolver.resolveMxSecure('signed.test')).resolves.toEqual({ value: [{ exchange: 'mx.signed.test', priority: 10 }], secure: true });
    await expect(resolver.resolveMxSecure('unsigned.test')).resolves.toEqual({ value: [{ exchange: 'mx.unsigned.test', priority: 5 }], secure: false });
    expect(server.queries).toHaveLength(2);
    for (const query of server.queries) expect(query).toMatchObject({ transport: 'udp', dnssecOk: true, adRequested: true, recursionDesired: true });
    // Random ids: two queries with the same id would be a 1-in-65536 coincidence.
    expect(server.queries[0]!.id).not.toBe(server.queries[1]!.id);
  });

  it('serves the plain lookups too, with the same shapes as the Node resolver (null MX as "")', async () => {
    await expect(resolver.resolveMx('signed.test')).resolves.toEqual([{ exchange: 'mx.signed.test', priority: 10 }]);
    await expect(lookupMx(resolver, 'null.test')).resolves.toEqual({ kind: 'null-mx' });
    await expect(resolver.resolve4('mx.signed.test')).resolves.toEqual(['127.0.0.20']);
    await expect(resolver.resolveAddresses('mx.signed.test')).resolves.toEqual(['127.0.0.20']);
    const address = await new Promise((resolve, reject) => resolver.lookup('mx.signed.test', { family: 4 }, (err, a) => (err ? reject(err) : resolve(a))));
    expect(address).toBe('127.0.0.20');
  });

  it('decodes TLSA records with lower-case hex data', async () => {
    await expect(resolver.resolveTlsa('_25._tcp.MX.signed.test.')).resolves.toEqual({
      value: [
        { usage: 3, selector: 1, matchingType: 1, data: TLSA_DATA.toString('hex') },
        { usage: 2, selector: 0, matchingType: 1, data: 'abcd' },
      ],
      secure: true,
    });
  });

  it('turns a SERVFAIL for TLSA into a temporary DnsError with code ESERVFAIL (bogus), never cached', async () => {
    const err = await resolver.resolveTlsa('_25._tcp.bogus.signed.test').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DnsError);
    expect(err).toMatchObject({ kind: 'temporary', temporary: true, code: 'ESERVFAIL' });
    await resolver.resolveTlsa('_25._tcp.bogus.signed.test').catch(() => undefined);
    expect(server.queries.filter((q) => q.name === '_25._tcp.bogus.signed.test')).toHaveLength(2);
  });

  it('maps NXDOMAIN to nxdomain and NOERROR without records to nodata, keeping whether the denial was proved', async () => {
    await expect(resolver.resolveTlsa('_25._tcp.none.signed.test')).rejects.toMatchObject({ kind: 'nxdomain', code: 'ENOTFOUND', secure: true });
    await expect(resolver.resolveTlsa('_25._tcp.insecure.test')).rejects.toMatchObject({ kind: 'nxdomain', secure: false });
    await expect(resolver.resolveMx('mx.signed.test')).rejects.toMatchObject({ kind: 'nodata', code: 'ENODATA', secure: true });
    await expect(resolver.resolveMx('nowhere.test')).rejects.toMatchObject({ kind: 'nxdomain' });
    // Cached for negativeTtl, secure flag included.
    await expect(resolver.resolveTlsa('_25._tcp.none.signed.test')).rejects.toMatchObject({ kind: 'nxdomain', secure: true });
    expect(server.queries.filter((q) => q.name === '_25._tcp.none.signed.test')).toHaveLength(1);
    clock += 31_000;
    await resolver.resolveTlsa('_25._tcp.none.signed.test').catch(() => undefined);
    expect(server.queries.filter((q) => q.name === '_25._tcp.none.signed.test')).toHaveLength(2);
  });

  it('caches answers for their real TTL (the smallest in the chain)', async () => {
    await resolver.resolve4('mx.signed.test');
    clock += 89_000;
    await resolver.resolve4('mx.signed.test');
    expect(server.queries.filter((q) => q.name === 'mx.signed.test' && q.type === 'A')).toHaveLength(1);
    clock += 2_000;
    await expect(resolver.resolveAddressesSecure('mx.signed.test', { ipv6: false })).resolves.toMatchObject({ secure: true });
    expect(server.queries.filter((q) => q.name === 'mx.signed.test' && q.type === 'A')).toHaveLength(2);

    // alias (600 s) → alias2 (60 s) → target (300 s): kept 60 s.
    await resolver.resolve4('alias.signed.test');
    clock += 61_000;
    await resolver.resolve4('alias.signed.test');
    expect(server.queries.filter((q) => q.name === 'alias.signed.test' && q.type === 'A')).toHaveLength(2);
  });

  it('follows a CNAME chain in the answer and reports the name it ended at', async () => {
    await expect(resolver.resolveAddressesSecure('alias.signed.test')).resolves.toEqual({ value: ['127.0.0.30'], secure: true, canonicalName: 'target.other.test' });
  });

  it('is secure only when every answer used was: an unauthenticated AAAA makes the addresses insecure', async () => {
    await expect(resolver.resolveAddressesSecure('half.test')).resolves.toEqual({ value: ['127.0.0.40', '::1'], secure: false, canonicalName: 'half.test' });
    await expect(resolver.resolveAddressesSecure('half.test', { ipv6: false })).resolves.toEqual({ value: ['127.0.0.40'], secure: true, canonicalName: 'half.test' });
  });

  it('retries over TCP when the UDP answer is truncated', async () => {
    await expect(resolver.resolveTxt('big.test')).resolves.toEqual(['v=STSv1; id=big']);
    expect(server.queries.filter((q) => q.name === 'big.test').map((q) => q.transport)).toEqual(['udp', 'tcp']);
  });

  it('ignores answers with another id or another question, and undecodable datagrams', async () => {
    await expect(resolver.resolve4('stray.test')).resolves.toEqual(['127.0.0.50']);
    await expect(resolver.resolve4('garbage.test')).resolves.toEqual(['127.0.0.51']);
  });

  it('reports a server that never answers as temporary (ETIMEOUT) after every try, a REFUSED and a malformed answer as temporary', async () => {
    const retrying = createResolver(config({ tries: 2, timeout: 150 }), { now: () => clock });
    await expect(retrying.resolveMx('silent.test')).rejects.toMatchObject({ kind: 'temporary', code: 'ETIMEOUT' });
    expect(server.queries.filter((q) => q.name === 'silent.test')).toHaveLength(2);
    await expect(resolver.resolveMx('refused.test')).rejects.toMatchObject({ kind: 'temporary', code: 'EREFUSED' });
    await expect(resolver.resolveMx('malformed.test')).rejects.toMatchObject({ kind: 'temporary', code: 'EBADRESP' });
  });

  it('asks the servers in order: a silent first server is passed over for the next', async () => {
    const dead = await startStubServer();
    dead.set('signed.test', 'MX', { behaviour: 'drop' });
    try {
      const twoServers = createResolver(config({ servers: [dead.address, server.address], timeout: 150 }), { now: () => clock });
      await expect(twoServers.resolveMxSecure('signed.test')).resolves.toMatchObject({ secure: true });
      expect(dead.queries).toHaveLength(1);
    } finally {
      await dead.close();
    }
  });
});

describe('validating resolver refuses resolvers off this host', () => {
  const base = { timeout: 100, tries: 1, cacheSize: 10, validating: true };

  it('refuses a remote server unless trustRemoteValidator, and accepts loopback ones', () => {
    expect(() => createResolver({ ...base, servers: ['192.0.2.53'], trustRemoteValidator: false })).toThrow(/dns\.validating.*192\.0\.2\.53.*not a loopback/);
    expect(createResolver({ ...base, servers: ['192.0.2.53'], trustRemoteValidator: true }).validating).toBe(true);
    expect(createResolver({ ...base, servers: ['127.0.0.53:5353', '[::1]:53'], trustRemoteValidator: false }).validating).toBe(true);
  });
});
