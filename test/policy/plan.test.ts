import { parseConfig } from '../../src/config/load';
import { createMtaSts, memoryPolicyCache, PolicyFetchError } from '../../src/policy/mta-sts';
import { createPlanner, type DeliveryPlan } from '../../src/policy/plan';
import { fakeDns, type FakeDns } from './fake-dns';

function config(extra: Record<string, unknown> = {}) {
  return parseConfig({ listeners: [{ name: 'submission', port: 0, tls: 'starttls', auth: 'required' }], ...extra }, {}, '/tmp');
}

function world(): { dns: FakeDns; policies: Map<string, string> } {
  const dns = fakeDns();
  const policies = new Map<string, string>();
  dns.mx.set('plain.example', [
    { exchange: 'mx2.plain.example', priority: 20 },
    { exchange: 'mx1.plain.example', priority: 10 },
  ]);
  dns.addresses.set('mx1.plain.example', ['127.0.0.1']);
  dns.addresses.set('mx2.plain.example', ['127.0.0.2', '::1']);
  dns.txt.set('_mta-sts.plain.example', 'nxdomain');

  dns.mx.set('sts.example', [
    { exchange: 'mx.sts.example', priority: 10 },
    { exchange: 'backup.other.example', priority: 20 },
  ]);
  dns.addresses.set('mx.sts.example', ['127.0.0.3']);
  dns.addresses.set('backup.other.example', ['127.0.0.4']);
  dns.txt.set('_mta-sts.sts.example', ['v=STSv1; id=1']);
  return { dns, policies };
}

function planner(w: ReturnType<typeof world>, extra: Record<string, unknown> = {}) {
  const fetcher = async (domain: string) => {
    const body = w.policies.get(domain);
    if (body === undefined) throw new PolicyFetchError('HTTP 404');
    return body;
  };
  const mtaSts = createMtaSts({ resolver: w.dns, fetcher, cache: memoryPolicyCache() });
  return createPlanner({ config: config(extra), resolver: w.dns, mtaSts, random: () => 0.5 });
}

function expectKind<K extends DeliveryPlan['kind']>(plan: DeliveryPlan, kind: K): Extract<DeliveryPlan, { kind: K }> {
  expect(plan.kind).toBe(kind);
  return plan as Extract<DeliveryPlan, { kind: K }>;
}

describe('planDelivery', () => {
  it('delivers to the MX hosts in preference order at the default level encrypt', async () => {
    const plan = expectKind(await planner(world()).planDelivery('Plain.Example.'), 'deliver');
    expect(plan.domain).toBe('plain.example');
    expect(plan.policy).toEqual({ source: 'default', mode: null, id: null, level: 'encrypt' });
    expect(plan.candidates).toEqual([
      {
        host: 'mx1.plain.example',
        preference: 10,
        addresses: ['127.0.0.1'],
        port: 25,
        requireValidCert: false,
        stsMatch: null,
        servername: 'mx1.plain.example',
        stsTesting: false,
        implicit: false,
        dane: null,
      },
      {
        host: 'mx2.plain.example',
        preference: 20,
        addresses: ['127.0.0.2', '::1'],
        port: 25,
        requireValidCert: false,
        stsMatch: null,
        servername: 'mx2.plain.example',
        stsTesting: false,
        implicit: false,
        dane: null,
      },
    ]);
    expect(plan.wouldFail).toEqual([]);
  });

  it('uses outbound.port, outbound.defaultLevel and the address caps', async () => {
    const plan = expectKind(await planner(world(), { outbound: { port: 2525, defaultLevel: 'verify', maxAddresses: 2 } }).planDelivery('plain.example'), 'deliver');
    expect(plan.candidates.map((c) => [c.port, c.requireValidCert, c.addresses])).toEqual([
      [2525, true, ['127.0.0.1']],
      [2525, true, ['127.0.0.2']],
    ]);
    expect(plan.policy).toMatchObject({ source: 'default', level: 'verify' });
  });

  it('applies a per-domain level', async () => {
    const plan = expectKind(await planner(world(), { domains: { 'PLAIN.example': { level: 'verify' } } }).planDelivery('plain.example'), 'deliver');
    expect(plan.policy).toMatchObject({ source: 'domain-rule', level: 'verify' });
    expect(plan.candidates.every((c) => c.requireValidCert)).toBe(true);
  });

  it('diverts a portal-level domain without any lookup', async () => {
    const w = world();
    const plan = expectKind(await planner(w, { domains: { 'plain.example': { level: 'portal' } } }).planDelivery('plain.example'), 'divert');
    expect(plan.code).toBe('portal-level');
    expect(w.dns.calls).toEqual([]);
  });

  it('diverts every domain when the default level is portal', async () => {
    expect(expectKind(await planner(world(), { outbound: { defaultLevel: 'portal' } }).planDelivery('plain.example'), 'divert').policy.source).toBe('default');
  });

  it('routes a domain to its configured next hop instead of its MX', async () => {
    const w = world();
    w.dns.addresses.set('relay.partner.example', ['127.0.0.9']);
    const byName = expectKind(await planner(w, { domains: { 'plain.example': { route: 'relay.partner.example:2526', level: 'verify' } } }).planDelivery('plain.example'), 'deliver');
    expect(byName.candidates).toEqual([expect.objectContaining({ host: 'relay.partner.example', addresses: ['127.0.0.9'], port: 2526, servername: 'relay.partner.example', requireValidCert: true })]);
    expect(w.dns.calls).not.toContain('MX plain.example');
    const byIp = expectKind(await planner(w, { outbound: { port: 2600 }, domains: { 'plain.example': { route: '127.0.0.7' } } }).planDelivery('plain.example'), 'deliver');
    expect(byIp.candidates).toEqual([expect.objectContaining({ host: '127.0.0.7', addresses: ['127.0.0.7'], port: 2600, servername: null })]);
  });

  it('bounces a null MX with 556 5.1.10 and an NXDOMAIN domain with 5.1.2', async () => {
    const w = world();
    w.dns.mx.set('null.example', [{ exchange: '', priority: 0 }]);
    const nullMx = expectKind(await planner(w).planDelivery('null.example'), 'bounce');
    expect(nullMx).toMatchObject({ code: 'null-mx', status: '5.1.10', reply: expect.stringMatching(/^556 5\.1\.10/) });
    expect(expectKind(await planner(w).planDelivery('nowhere.example'), 'bounce')).toMatchObject({ code: 'nxdomain', status: '5.1.2' });
  });

  it('defers on a temporary DNS failure', async () => {
    const w = world();
    w.dns.mx.set('flaky.example', 'temporary');
    expect(expectKind(await planner(w).planDelivery('flaky.example'), 'defer').code).toBe('dns-temporary');
  });

  it('defers when the MX hosts have no address yet, and when an MTA-STS lookup fails with nothing cached', async () => {
    const w = world();
    w.dns.mx.set('dangling.example', [{ exchange: 'mx.dangling.example', priority: 10 }]);
    w.dns.txt.set('_mta-sts.dangling.example', 'nodata');
    expect(expectKind(await planner(w).planDelivery('dangling.example'), 'defer').code).toBe('mx-no-address');
    w.dns.txt.set('_mta-sts.plain.example', 'temporary');
    expect(expectKind(await planner(w).planDelivery('plain.example'), 'defer').code).toBe('mta-sts-dns-temporary');
  });

  it('uses the implicit MX', async () => {
    const w = world();
    w.dns.mx.set('implicit.example', 'nodata');
    w.dns.addresses.set('implicit.example', ['127.0.0.8']);
    const plan = expectKind(await planner(w).planDelivery('implicit.example'), 'deliver');
    expect(plan.candidates).toEqual([expect.objectContaining({ host: 'implicit.example', implicit: true, addresses: ['127.0.0.8'], preference: 0 })]);
  });

  it('MTA-STS enforce: requires a valid certificate on matching MX hosts and leaves out the others', async () => {
    const w = world();
    w.policies.set('sts.example', 'version: STSv1\nmode: enforce\nmx: *.sts.example\nmax_age: 86400\n');
    const plan = expectKind(await planner(w).planDelivery('sts.example'), 'deliver');
    expect(plan.policy).toEqual({ source: 'mta-sts', mode: 'enforce', id: '1', level: 'encrypt' });
    expect(plan.candidates).toEqual([expect.objectContaining({ host: 'mx.sts.example', requireValidCert: true, stsMatch: true })]);
    expect(plan.hosts.map((h) => [h.host, h.excluded])).toEqual([
      ['mx.sts.example', null],
      ['backup.other.example', 'mx-not-in-policy'],
    ]);
  });

  it('MTA-STS enforce with no matching MX diverts', async () => {
    const w = world();
    w.policies.set('sts.example', 'version: STSv1\nmode: enforce\nmx: mx.elsewhere.example\nmax_age: 86400\n');
    expect(expectKind(await planner(w).planDelivery('sts.example'), 'divert').code).toBe('mta-sts-no-matching-mx');
  });

  it('MTA-STS testing: delivers as without a policy and records what enforce would refuse', async () => {
    const w = world();
    w.policies.set('sts.example', 'version: STSv1\nmode: testing\nmx: mx.sts.example\nmax_age: 86400\n');
    const plan = expectKind(await planner(w).planDelivery('sts.example'), 'deliver');
    expect(plan.policy).toMatchObject({ source: 'mta-sts', mode: 'testing' });
    expect(plan.candidates.map((c) => [c.host, c.requireValidCert, c.stsMatch, c.stsTesting])).toEqual([
      ['mx.sts.example', false, true, true],
      ['backup.other.example', false, false, true],
    ]);
    expect(plan.wouldFail).toEqual([expect.objectContaining({ host: 'backup.other.example', reason: 'mx-not-in-policy' })]);
  });

  it('MTA-STS none: no policy, the domain rule applies', async () => {
    const w = world();
    w.policies.set('sts.example', 'version: STSv1\nmode: none\nmax_age: 86400\n');
    const plan = expectKind(await planner(w, { domains: { 'sts.example': { level: 'verify' } } }).planDelivery('sts.example'), 'deliver');
    expect(plan.policy).toEqual({ source: 'domain-rule', mode: 'none', id: '1', level: 'verify' });
    expect(plan.candidates.map((c) => c.stsMatch)).toEqual([null, null]);
  });

  it('MTA-STS fetch failure without a cached policy: delivers as without a policy, with the error as evidence', async () => {
    const plan = expectKind(await planner(world()).planDelivery('sts.example'), 'deliver');
    expect(plan.policy.source).toBe('default');
    expect(plan.mtaSts).toMatchObject({ record: { id: '1' }, policy: null, error: expect.stringMatching(/404/) });
  });
});

describe('planOpportunistic (portal notices)', () => {
  it('plans the MX hosts without MTA-STS or the domain level: enforce with no match still delivers, nothing requires a valid certificate', async () => {
    const w = world();
    w.policies.set('sts.example', 'version: STSv1\nmode: enforce\nmx: mx.elsewhere.example\nmax_age: 86400\n');
    const plan = expectKind(await planner(w, { domains: { 'sts.example': { level: 'verify' } } }).planOpportunistic('sts.example'), 'deliver');
    expect(plan.candidates.map((c) => [c.host, c.requireValidCert, c.stsMatch])).toEqual([
      ['mx.sts.example', false, null],
      ['backup.other.example', false, null],
    ]);
    expect(plan.mtaSts).toBeNull();
    expect(w.dns.calls).not.toContain('TXT _mta-sts.sts.example');
  });

  it('a portal-level domain still gets its notices; a route still applies', async () => {
    const w = world();
    expect(expectKind(await planner(w, { domains: { 'plain.example': { level: 'portal' } } }).planOpportunistic('plain.example'), 'deliver').candidates[0]!.host).toBe('mx1.plain.example');
    const routed = expectKind(await planner(w, { domains: { 'plain.example': { route: '127.0.0.7:2526', level: 'verify' } } }).planOpportunistic('plain.example'), 'deliver');
    expect(routed.candidates).toEqual([expect.objectContaining({ host: '127.0.0.7', port: 2526, requireValidCert: false })]);
  });

  it('a null MX bounces; a temporary DNS failure defers', async () => {
    const w = world();
    w.dns.mx.set('null.example', [{ exchange: '', priority: 0 }]);
    w.dns.mx.set('flaky.example', 'temporary');
    expect(expectKind(await planner(w).planOpportunistic('null.example'), 'bounce')).toMatchObject({ code: 'null-mx', status: '5.1.10' });
    expect(expectKind(await planner(w).planOpportunistic('flaky.example'), 'defer').code).toBe('dns-temporary');
  });
});
