import { createMtaSts, FETCH_RETRY_BACKOFF, memoryPolicyCache, PolicyFetchError, type PolicyCache } from '../../src/policy/mta-sts';
import { fakeDns } from './fake-dns';

const ENFORCE = 'version: STSv1\nmode: enforce\nmx: *.example.com\nmax_age: 86400\n';
const TESTING = 'version: STSv1\nmode: testing\nmx: mx.example.com\nmax_age: 86400\n';
const NONE = 'version: STSv1\nmode: none\nmax_age: 86400\n';

function setup() {
  let clock = 1_700_000_000_000;
  const dns = fakeDns();
  const bodies: Array<string | Error> = [];
  const fetched: string[] = [];
  const fetcher = async (domain: string) => {
    fetched.push(domain);
    const next = bodies.shift();
    if (next === undefined) throw new PolicyFetchError('no body queued');
    if (next instanceof Error) throw next;
    return next;
  };
  const cache: PolicyCache = memoryPolicyCache(() => clock);
  const make = () => createMtaSts({ resolver: dns, fetcher, cache, now: () => clock });
  return {
    dns,
    bodies,
    fetched,
    cache,
    sts: make(),
    make,
    advance: (ms: number) => {
      clock += ms;
    },
    record: (id: string) => dns.txt.set('_mta-sts.example.com', [`v=STSv1; id=${id}`]),
  };
}

describe('MTA-STS discovery, fetch and cache (RFC 8461 §3, §5.1)', () => {
  it('means no policy when there is no TXT record, and fetches nothing', async () => {
    const t = setup();
    t.dns.txt.set('_mta-sts.example.com', 'nxdomain');
    expect(await t.sts.lookup('example.com')).toMatchObject({ record: null, policy: null, source: null, error: null, temporary: false });
    expect(t.fetched).toEqual([]);
  });

  it('fetches and caches a policy, then serves it from the cache while the id is unchanged', async () => {
    const t = setup();
    t.record('1');
    t.bodies.push(ENFORCE);
    expect(await t.sts.lookup('example.com')).toMatchObject({ record: { id: '1' }, policy: { mode: 'enforce', mx: ['*.example.com'], maxAge: 86400 }, source: 'fetched', policyId: '1' });
    t.advance(3_600_000);
    // A second instance shares the cache (as relays sharing one store do).
    expect(await t.make().lookup('example.com')).toMatchObject({ policy: { mode: 'enforce' }, source: 'cache', policyId: '1' });
    expect(t.fetched).toHaveLength(1);
  });

  it('refetches when the TXT id changes', async () => {
    const t = setup();
    t.record('1');
    t.bodies.push(ENFORCE, TESTING);
    await t.sts.lookup('example.com');
    t.record('2');
    expect(await t.sts.lookup('example.com')).toMatchObject({ policy: { mode: 'testing' }, source: 'fetched', policyId: '2' });
    expect(t.fetched).toHaveLength(2);
  });

  it('honours max_age: an expired policy is fetched again', async () => {
    const t = setup();
    t.record('1');
    t.bodies.push(ENFORCE, ENFORCE);
    await t.sts.lookup('example.com');
    t.advance(86_400_000 + 1);
    expect(await t.sts.lookup('example.com')).toMatchObject({ source: 'fetched' });
    expect(t.fetched).toHaveLength(2);
  });

  it('keeps using the cached, unexpired policy when a refetch fails, and says why', async () => {
    const t = setup();
    t.record('1');
    t.bodies.push(ENFORCE, new PolicyFetchError('connection refused'));
    await t.sts.lookup('example.com');
    t.record('2');
    const result = await t.sts.lookup('example.com');
    expect(result).toMatchObject({ record: { id: '2' }, policy: { mode: 'enforce' }, policyId: '1', source: 'cache', errorType: 'sts-policy-fetch-error' });
    expect(result.error).toMatch(/connection refused/);
  });

  it('reports failed fetches to the caller (for the log)', async () => {
    const t = setup();
    const events: unknown[] = [];
    const sts = createMtaSts({
      resolver: t.dns,
      fetcher: async () => {
        throw new PolicyFetchError('HTTP 503');
      },
      cache: t.cache,
      onFetchFailure: (e) => events.push(e),
    });
    t.record('7');
    await sts.lookup('example.com');
    expect(events).toEqual([{ domain: 'example.com', id: '7', error: expect.stringMatching(/HTTP 503/), cachedMode: null }]);
  });

  it('keeps the cached policy when a refetched policy is invalid', async () => {
    const t = setup();
    t.record('1');
    t.bodies.push(ENFORCE, 'version: STSv1\nmode: enforce\nmax_age: 10\n');
    await t.sts.lookup('example.com');
    t.record('2');
    expect(await t.sts.lookup('example.com')).toMatchObject({ policy: { mode: 'enforce' }, source: 'cache', errorType: 'sts-policy-invalid', error: expect.stringMatching(/at least one "mx"/) });
  });

  it('waits 5 minutes before fetching the same id again after a failure', async () => {
    const t = setup();
    t.record('1');
    t.bodies.push(new PolicyFetchError('HTTP 500'), ENFORCE);
    expect(await t.sts.lookup('example.com')).toMatchObject({ policy: null, error: expect.stringMatching(/HTTP 500/) });
    t.advance(60_000);
    expect(await t.sts.lookup('example.com')).toMatchObject({ policy: null, error: expect.stringMatching(/less than 5 minutes/) });
    expect(t.fetched).toHaveLength(1);
    t.advance(FETCH_RETRY_BACKOFF);
    expect(await t.sts.lookup('example.com')).toMatchObject({ policy: { mode: 'enforce' }, source: 'fetched' });
    expect(t.fetched).toHaveLength(2);
  });

  it('fetches at once for a new id even within the back-off of an old one', async () => {
    const t = setup();
    t.record('1');
    t.bodies.push(new PolicyFetchError('HTTP 500'), ENFORCE);
    await t.sts.lookup('example.com');
    t.record('2');
    expect(await t.sts.lookup('example.com')).toMatchObject({ policy: { mode: 'enforce' }, source: 'fetched' });
  });

  it('clears the cached policy when the domain publishes mode none', async () => {
    const t = setup();
    t.record('1');
    t.bodies.push(ENFORCE, NONE);
    await t.sts.lookup('example.com');
    t.record('2');
    expect(await t.sts.lookup('example.com')).toMatchObject({ policy: { mode: 'none' }, source: 'fetched' });
    expect(await t.cache.get('policy:example.com')).toBeUndefined();
    // With the record gone, nothing is left.
    t.dns.txt.set('_mta-sts.example.com', 'nxdomain');
    expect(await t.sts.lookup('example.com')).toMatchObject({ policy: null, source: null });
  });

  it('keeps a cached policy when the TXT record disappears (removal needs mode none)', async () => {
    const t = setup();
    t.record('1');
    t.bodies.push(ENFORCE);
    await t.sts.lookup('example.com');
    t.dns.txt.set('_mta-sts.example.com', 'nxdomain');
    expect(await t.sts.lookup('example.com')).toMatchObject({ record: null, policy: { mode: 'enforce' }, source: 'cache' });
  });

  it('keeps a cached policy when two records are published', async () => {
    const t = setup();
    t.record('1');
    t.bodies.push(ENFORCE);
    await t.sts.lookup('example.com');
    t.dns.txt.set('_mta-sts.example.com', ['v=STSv1; id=1', 'v=STSv1; id=2']);
    expect(await t.sts.lookup('example.com')).toMatchObject({ record: null, policy: { mode: 'enforce' }, source: 'cache', error: expect.stringMatching(/2 TXT records/) });
  });

  it('does not take a temporary DNS failure for "no record"', async () => {
    const t = setup();
    t.dns.txt.set('_mta-sts.example.com', 'temporary');
    expect(await t.sts.lookup('example.com')).toMatchObject({ policy: null, temporary: true, error: expect.stringMatching(/temporary/) });
    // ...and with a cached policy, that policy applies.
    t.record('1');
    t.bodies.push(ENFORCE);
    await t.sts.lookup('example.com');
    t.dns.txt.set('_mta-sts.example.com', 'temporary');
    expect(await t.sts.lookup('example.com')).toMatchObject({ policy: { mode: 'enforce' }, source: 'cache', temporary: false });
  });

  it('does not cache a policy with max_age 0', async () => {
    const t = setup();
    t.record('1');
    t.bodies.push('version: STSv1\nmode: enforce\nmx: *.example.com\nmax_age: 0\n', ENFORCE);
    expect(await t.sts.lookup('example.com')).toMatchObject({ policy: { maxAge: 0 }, source: 'fetched' });
    expect(await t.sts.lookup('example.com')).toMatchObject({ source: 'fetched' });
    expect(t.fetched).toHaveLength(2);
  });

  it('treats a damaged cache entry as absent', async () => {
    const t = setup();
    await t.cache.set('policy:example.com', '{not json', 60_000);
    t.record('1');
    t.bodies.push(ENFORCE);
    expect(await t.sts.lookup('example.com')).toMatchObject({ source: 'fetched' });
  });
});

describe('MTA-STS observer', () => {
  it('is told every lookup result, cached ones included', async () => {
    const t = setup();
    const seen: Array<string | null> = [];
    const sts = createMtaSts({ resolver: t.dns, fetcher: async () => ENFORCE, cache: t.cache, observer: { lookedUp: (result) => seen.push(result.source) } });
    t.record('1');
    await sts.lookup('example.com');
    await sts.lookup('example.com');
    t.dns.txt.set('_mta-sts.other.com', 'nxdomain');
    await sts.lookup('other.com');
    expect(seen).toEqual(['fetched', 'cache', null]);
  });
});
