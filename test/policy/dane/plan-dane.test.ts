import { parseConfig } from '../../../src/config/load';
import { createMtaSts, memoryPolicyCache, PolicyFetchError } from '../../../src/policy/mta-sts';
import { createPlanner, type DeliveryPlan, type PlannerDeps } from '../../../src/policy/plan';
import { DnsError, type MxAnswer, type Secured } from '../../../src/policy/resolver';
import type { TlsaRecord } from '../../../src/policy/dane/types';

type Answer<T> = { value: T; secure: boolean } | 'nxdomain' | 'nodata' | 'temporary';

/** A validating resolver in memory: every answer says whether it was secure (the AD bit). */
function fakeValidating(validating = true) {
  const mx = new Map<string, Answer<MxAnswer[]>>();
  const addresses = new Map<string, Answer<string[]> & { canonicalName?: string }>();
  const tlsa = new Map<string, Answer<TlsaRecord[]>>();
  const calls: string[] = [];
  function get<T>(type: string, name: string, answer: Answer<T> | undefined): Secured<T> {
    calls.push(`${type} ${name}`);
    if (answer === undefined || answer === 'nxdomain') throw new DnsError('nxdomain', `${type} ${name}`, 'ENOTFOUND');
    if (answer === 'nodata') throw new DnsError('nodata', `${type} ${name}`, 'ENODATA');
    if (answer === 'temporary') throw new DnsError('temporary', `${type} ${name}`, 'ESERVFAIL');
    return answer;
  }
  const resolver = {
    validating,
    async resolveMx(name: string) {
      return get('MX', name, mx.get(name)).value;
    },
    async resolveAddresses(name: string) {
      return get('A', name, addresses.get(name)).value;
    },
    async resolveTxt(name: string): Promise<string[]> {
      throw new DnsError('nxdomain', `TXT ${name}`, 'ENOTFOUND');
    },
    async resolveMxSecure(name: string) {
      return get('MX+DO', name, mx.get(name));
    },
    async resolveAddressesSecure(name: string) {
      const answer = addresses.get(name);
      const got = get('A+DO', name, answer);
      return { ...got, canonicalName: (typeof answer === 'object' && answer.canonicalName) || name };
    },
    async resolveTlsa(name: string) {
      return get('TLSA', name, tlsa.get(name));
    },
  };
  return { resolver, mx, addresses, tlsa, calls };
}

const EE: TlsaRecord = { usage: 3, selector: 1, matchingType: 1, data: 'ab'.repeat(32) };
const PKIX: TlsaRecord = { usage: 1, selector: 1, matchingType: 1, data: 'cd'.repeat(32) };

function config(extra: Record<string, unknown> = {}) {
  return parseConfig({ listeners: [{ name: 'submission', port: 0, tls: 'starttls', auth: 'required' }], ...extra }, {}, '/tmp');
}

function planner(w: ReturnType<typeof fakeValidating>, policies: Map<string, string> = new Map(), extra: Record<string, unknown> = {}) {
  const fetcher = async (domain: string) => {
    const body = policies.get(domain);
    if (body === undefined) throw new PolicyFetchError('HTTP 404');
    return body;
  };
  const resolver = w.resolver as unknown as PlannerDeps['resolver'] & Parameters<typeof createMtaSts>[0]['resolver'];
  const mtaSts = createMtaSts({ resolver, fetcher, cache: memoryPolicyCache() });
  return createPlanner({ config: config(extra), resolver, mtaSts, random: () => 0.5 });
}

function twoMx(secure = true) {
  const w = fakeValidating();
  w.mx.set('dane.test', {
    value: [
      { exchange: 'mx1.dane.test', priority: 10 },
      { exchange: 'mx2.dane.test', priority: 20 },
    ],
    secure,
  });
  w.addresses.set('mx1.dane.test', { value: ['127.0.0.1'], secure: true });
  w.addresses.set('mx2.dane.test', { value: ['127.0.0.2'], secure: true });
  return w;
}

function expectKind<K extends DeliveryPlan['kind']>(plan: DeliveryPlan, kind: K): Extract<DeliveryPlan, { kind: K }> {
  expect(plan.kind).toBe(kind);
  return plan as Extract<DeliveryPlan, { kind: K }>;
}

describe('planDelivery with a validating resolver (DANE)', () => {
  it('secure MX, secure addresses and secure TLSA records: secure-tlsa with the usable records and reference names', async () => {
    const w = twoMx();
    w.tlsa.set('_25._tcp.mx1.dane.test', { value: [EE, PKIX], secure: true });
    w.tlsa.set('_25._tcp.mx2.dane.test', 'nodata');
    const plan = expectKind(await planner(w).planDelivery('dane.test'), 'deliver');
    expect(plan.candidates[0]!.dane).toEqual({
      state: 'secure-tlsa',
      records: [EE, PKIX],
      usable: [EE],
      referenceNames: ['mx1.dane.test', 'dane.test'],
      tlsaName: '_25._tcp.mx1.dane.test',
      reason: expect.stringContaining('1 usable TLSA record'),
    });
    expect(plan.candidates[1]!.dane).toMatchObject({ state: 'no-tlsa', records: [], usable: [] });
    expect(plan.hosts.map((h) => h.dane?.state)).toEqual(['secure-tlsa', 'no-tlsa']);
  });

  it('only usage 0/1 records: still secure-tlsa (TLS mandatory), with nothing usable', async () => {
    const w = twoMx();
    w.tlsa.set('_25._tcp.mx1.dane.test', { value: [PKIX], secure: true });
    w.tlsa.set('_25._tcp.mx2.dane.test', 'nxdomain');
    const plan = expectKind(await planner(w).planDelivery('dane.test'), 'deliver');
    expect(plan.candidates[0]!.dane).toMatchObject({ state: 'secure-tlsa', usable: [], reason: expect.stringContaining('none usable') });
  });

  it('an unsigned MX RRset: insecure, and no TLSA lookup is made', async () => {
    const w = twoMx(false);
    w.tlsa.set('_25._tcp.mx1.dane.test', { value: [EE], secure: true });
    const plan = expectKind(await planner(w).planDelivery('dane.test'), 'deliver');
    expect(plan.candidates.map((c) => c.dane?.state)).toEqual(['insecure', 'insecure']);
    expect(w.calls.filter((call) => call.startsWith('TLSA'))).toEqual([]);
  });

  it('unsigned address records of a host: insecure for that host, no TLSA lookup for it', async () => {
    const w = twoMx();
    w.addresses.set('mx1.dane.test', { value: ['127.0.0.1'], secure: false });
    w.tlsa.set('_25._tcp.mx1.dane.test', { value: [EE], secure: true });
    w.tlsa.set('_25._tcp.mx2.dane.test', { value: [EE], secure: true });
    const plan = expectKind(await planner(w).planDelivery('dane.test'), 'deliver');
    expect(plan.candidates.map((c) => c.dane?.state)).toEqual(['insecure', 'secure-tlsa']);
    expect(w.calls).not.toContain('TLSA _25._tcp.mx1.dane.test');
  });

  it('an unsigned TLSA answer: insecure', async () => {
    const w = twoMx();
    w.tlsa.set('_25._tcp.mx1.dane.test', { value: [EE], secure: false });
    w.tlsa.set('_25._tcp.mx2.dane.test', 'nodata');
    const plan = expectKind(await planner(w).planDelivery('dane.test'), 'deliver');
    expect(plan.candidates[0]!.dane).toMatchObject({ state: 'insecure', tlsaName: '_25._tcp.mx1.dane.test' });
  });

  it('a bogus TLSA lookup (SERVFAIL) excludes that host; the next one is still a candidate', async () => {
    const w = twoMx();
    w.tlsa.set('_25._tcp.mx1.dane.test', 'temporary');
    w.tlsa.set('_25._tcp.mx2.dane.test', { value: [EE], secure: true });
    const plan = expectKind(await planner(w).planDelivery('dane.test'), 'deliver');
    expect(plan.candidates.map((c) => c.host)).toEqual(['mx2.dane.test']);
    expect(plan.hosts[0]).toMatchObject({ host: 'mx1.dane.test', excluded: 'dane-tlsa-bogus', dane: { state: 'bogus' } });
  });

  it('every TLSA lookup bogus: the plan defers with dane-tlsa-bogus (never diverts or delivers)', async () => {
    const w = twoMx();
    w.tlsa.set('_25._tcp.mx1.dane.test', 'temporary');
    w.tlsa.set('_25._tcp.mx2.dane.test', 'temporary');
    const plan = expectKind(await planner(w).planDelivery('dane.test'), 'defer');
    expect(plan.code).toBe('dane-tlsa-bogus');
  });

  it('a bogus host and a host left out by MTA-STS enforce: still a deferral, not an MTA-STS diversion', async () => {
    const w = twoMx();
    w.tlsa.set('_25._tcp.mx1.dane.test', 'temporary');
    w.tlsa.set('_25._tcp.mx2.dane.test', 'nodata');
    w.resolver.resolveTxt = async (name: string) => {
      if (name === '_mta-sts.dane.test') return ['v=STSv1; id=1'];
      throw new DnsError('nxdomain', `TXT ${name}`, 'ENOTFOUND');
    };
    const policies = new Map([['dane.test', 'version: STSv1\nmode: enforce\nmx: mx1.dane.test\nmax_age: 86400\n']]);
    const plan = expectKind(await planner(w, policies).planDelivery('dane.test'), 'defer');
    expect(plan.code).toBe('dane-tlsa-bogus');
    expect(plan.hosts.map((h) => h.excluded)).toEqual(['dane-tlsa-bogus', 'mx-not-in-policy']);
  });

  it('a host DANE governs is not excluded by an MTA-STS enforce policy, nor judged by it', async () => {
    const w = twoMx();
    w.tlsa.set('_25._tcp.mx1.dane.test', 'nodata');
    w.tlsa.set('_25._tcp.mx2.dane.test', { value: [EE], secure: true });
    w.resolver.resolveTxt = async (name: string) => {
      if (name === '_mta-sts.dane.test') return ['v=STSv1; id=1'];
      throw new DnsError('nxdomain', `TXT ${name}`, 'ENOTFOUND');
    };
    const policies = new Map([['dane.test', 'version: STSv1\nmode: enforce\nmx: mx1.dane.test\nmax_age: 86400\n']]);
    const plan = expectKind(await planner(w, policies).planDelivery('dane.test'), 'deliver');
    expect(plan.candidates.map((c) => [c.host, c.dane?.state, c.stsMatch])).toEqual([
      ['mx1.dane.test', 'no-tlsa', true],
      ['mx2.dane.test', 'secure-tlsa', false],
    ]);
  });

  it('a CNAME-d MX host: TLSA first at the canonical name (which becomes a reference name), then at the original name', async () => {
    const w = fakeValidating();
    w.mx.set('dane.test', { value: [{ exchange: 'mx.dane.test', priority: 10 }], secure: true });
    w.addresses.set('mx.dane.test', { value: ['127.0.0.1'], secure: true, canonicalName: 'mail.provider.test' });
    w.tlsa.set('_25._tcp.mail.provider.test', { value: [EE], secure: true });
    w.tlsa.set('_25._tcp.mx.dane.test', { value: [PKIX], secure: true });
    let plan = expectKind(await planner(w).planDelivery('dane.test'), 'deliver');
    expect(plan.candidates[0]!.dane).toMatchObject({
      state: 'secure-tlsa',
      tlsaName: '_25._tcp.mail.provider.test',
      usable: [EE],
      referenceNames: ['mx.dane.test', 'mail.provider.test', 'dane.test'],
    });
    expect(plan.candidates[0]!.servername).toBe('mx.dane.test');

    w.tlsa.set('_25._tcp.mail.provider.test', 'nodata');
    plan = expectKind(await planner(w).planDelivery('dane.test'), 'deliver');
    expect(plan.candidates[0]!.dane).toMatchObject({ state: 'secure-tlsa', tlsaName: '_25._tcp.mx.dane.test', records: [PKIX], referenceNames: ['mx.dane.test', 'dane.test'] });
  });

  it('the implicit MX: the domain address answer decides whether DANE may apply', async () => {
    const w = fakeValidating();
    w.mx.set('implicit.test', 'nodata');
    w.addresses.set('implicit.test', { value: ['127.0.0.1'], secure: true });
    w.tlsa.set('_25._tcp.implicit.test', { value: [EE], secure: true });
    let plan = expectKind(await planner(w).planDelivery('implicit.test'), 'deliver');
    expect(plan.candidates[0]).toMatchObject({ host: 'implicit.test', implicit: true, dane: { state: 'secure-tlsa', referenceNames: ['implicit.test'] } });
    w.addresses.set('implicit.test', { value: ['127.0.0.1'], secure: false });
    plan = expectKind(await planner(w).planDelivery('implicit.test'), 'deliver');
    expect(plan.candidates[0]!.dane).toMatchObject({ state: 'insecure' });
  });

  it('without `validating`, DANE stays off: dane null everywhere and no secure or TLSA lookups', async () => {
    const w = fakeValidating(false);
    w.mx.set('dane.test', { value: [{ exchange: 'mx1.dane.test', priority: 10 }], secure: true });
    w.addresses.set('mx1.dane.test', { value: ['127.0.0.1'], secure: true });
    w.tlsa.set('_25._tcp.mx1.dane.test', 'temporary');
    const plan = expectKind(await planner(w).planDelivery('dane.test'), 'deliver');
    expect(plan.candidates[0]!.dane).toBeNull();
    expect(plan.hosts[0]!.dane).toBeNull();
    expect(w.calls.filter((call) => /\+DO|TLSA/.test(call))).toEqual([]);
  });

  it('portal notices (planOpportunistic) and routes never look at DANE', async () => {
    const w = twoMx();
    w.tlsa.set('_25._tcp.mx1.dane.test', 'temporary');
    w.tlsa.set('_25._tcp.mx2.dane.test', 'temporary');
    const plan = expectKind(await planner(w).planOpportunistic('dane.test'), 'deliver');
    expect(plan.candidates.map((c) => c.dane)).toEqual([null, null]);
    const routed = expectKind(await planner(w, new Map(), { domains: { 'dane.test': { route: '127.0.0.9:2525' } } }).planDelivery('dane.test'), 'deliver');
    expect(routed.candidates[0]!.dane).toBeNull();
  });
});
