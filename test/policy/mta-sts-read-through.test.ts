import { createMtaSts, memoryPolicyCache, PolicyFetchError, readThroughPolicyCache, type PolicyCache } from '../../src/policy/mta-sts';
import { fakeDns } from './fake-dns';

const ENFORCE = 'version: STSv1\nmode: enforce\nmx: *.example.com\nmax_age: 60\n';

/** The shared (store) cache, counting its reads. */
function counted(clock: () => number): PolicyCache & { reads: number } {
  const inner = memoryPolicyCache(clock);
  const shared = {
    reads: 0,
    get: async (key: string) => {
      shared.reads++;
      return inner.get(key);
    },
    set: (key: string, value: string, ttlMs: number) => inner.set(key, value, ttlMs),
    delete: (key: string) => inner.delete(key),
  };
  return shared;
}

function setup() {
  let clock = 1_700_000_000_000;
  const now = () => clock;
  const shared = counted(now);
  const dns = fakeDns();
  const bodies: string[] = [];
  const fetcher = async () => {
    const body = bodies.shift();
    if (body === undefined) throw new PolicyFetchError('no body queued');
    return body;
  };
  const held = readThroughPolicyCache(shared, { holdMs: 5_000, now });
  return { shared, held, dns, bodies, sts: createMtaSts({ resolver: dns, fetcher, cache: held, now }), now, advance: (ms: number) => (clock += ms) };
}

describe('the relay reads the shared MTA-STS cache through an in-process copy', () => {
  it('reads the store once per domain within the hold, for a domain with a policy and for one without', async () => {
    const t = setup();
    t.dns.txt.set('_mta-sts.example.com', ['v=STSv1; id=1']);
    t.dns.txt.set('_mta-sts.plain.test', 'nxdomain');
    t.bodies.push(ENFORCE);
    expect(await t.sts.lookup('example.com')).toMatchObject({ source: 'fetched', policyId: '1' });
    const afterFetch = t.shared.reads;
    for (let i = 0; i < 50; i++) {
      expect(await t.sts.lookup('example.com')).toMatchObject({ source: 'cache', policy: { mode: 'enforce' }, policyId: '1' });
      expect(await t.sts.lookup('plain.test')).toMatchObject({ policy: null, source: null });
    }
    // The fetch's own write is held: example.com needs no read at all; plain.test one (its absence is held too).
    expect(t.shared.reads - afterFetch).toBe(1);
  });

  it('sees another relay’s write once the hold has passed', async () => {
    const t = setup();
    t.dns.txt.set('_mta-sts.example.com', ['v=STSv1; id=1']);
    t.bodies.push(ENFORCE);
    await t.sts.lookup('example.com');
    // Another relay sharing the store removes the policy (it fetched mode none).
    await t.shared.delete('policy:example.com');
    t.bodies.push(ENFORCE);
    t.advance(4_000);
    expect(await t.sts.lookup('example.com')).toMatchObject({ source: 'cache', policyId: '1' });
    t.advance(1_001);
    // Held copy gone: the store has no policy for id 1 any more, so this relay fetches it again.
    expect(await t.sts.lookup('example.com')).toMatchObject({ source: 'fetched', policyId: '1' });
  });

  it('never extends a policy past its max_age: an expired held policy counts as absent', async () => {
    const t = setup();
    t.dns.txt.set('_mta-sts.example.com', ['v=STSv1; id=1']);
    t.bodies.push(ENFORCE);
    await t.sts.lookup('example.com');
    t.dns.txt.set('_mta-sts.example.com', 'nxdomain');
    const held = readThroughPolicyCache(t.shared, { holdMs: 3_600_000, now: t.now });
    const sts = createMtaSts({ resolver: t.dns, fetcher: async () => ENFORCE, cache: held, now: t.now });
    expect(await sts.lookup('example.com')).toMatchObject({ source: 'cache', policyId: '1' });
    t.advance(61_000);
    expect(await sts.lookup('example.com')).toMatchObject({ policy: null, source: null });
  });

  it('writes and deletes go to the shared cache and replace the held copy at once', async () => {
    let clock = 0;
    const shared = counted(() => clock);
    const held = readThroughPolicyCache(shared, { holdMs: 5_000, now: () => clock });
    expect(await held.get('k')).toBeUndefined();
    await held.set('k', 'v1', 60_000);
    expect(await held.get('k')).toBe('v1');
    expect(await shared.get('k')).toBe('v1');
    await held.delete('k');
    expect(await held.get('k')).toBeUndefined();
    expect(await shared.get('k')).toBeUndefined();
    clock += 1;
    expect(shared.reads).toBe(3);
  });

  it('holds at most maxEntries keys, dropping the oldest', async () => {
    const clock = () => 0;
    const shared = counted(clock);
    const held = readThroughPolicyCache(shared, { holdMs: 5_000, now: clock, maxEntries: 2 });
    await held.get('a');
    await held.get('b');
    await held.get('c');
    expect(shared.reads).toBe(3);
    await held.get('c');
    await held.get('b');
    expect(shared.reads).toBe(3);
    await held.get('a');
    expect(shared.reads).toBe(4);
  });
});
