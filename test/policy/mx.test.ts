import { lookupMx, orderMx, resolveMxAddresses } from '../../src/policy/mx';
import { fakeDns } from './fake-dns';

/** A deterministic "random" source cycling through the given values. */
const sequence = (...values: number[]) => {
  let i = 0;
  return () => values[i++ % values.length]!;
};

describe('MX ordering (RFC 5321 §5.1)', () => {
  const records = [
    { exchange: 'c.example', priority: 20 },
    { exchange: 'a.example', priority: 10 },
    { exchange: 'b.example', priority: 10 },
    { exchange: 'd.example', priority: 5 },
  ];

  it('sorts by preference, lowest first', () => {
    const hosts = orderMx(records, sequence(0.5));
    expect(hosts.map((h) => h.preference)).toEqual([5, 10, 10, 20]);
    expect(hosts[0]!.host).toBe('d.example');
    expect(hosts[3]!.host).toBe('c.example');
  });

  it('shuffles hosts of equal preference', () => {
    // tiebreaks in record order: c, a, b, d
    expect(orderMx(records, sequence(0, 0.1, 0.9, 0)).map((h) => h.host)).toEqual(['d.example', 'a.example', 'b.example', 'c.example']);
    expect(orderMx(records, sequence(0, 0.9, 0.1, 0)).map((h) => h.host)).toEqual(['d.example', 'b.example', 'a.example', 'c.example']);
  });

  it('produces both orders of an equal pair with Math.random over many runs', () => {
    const pair = [
      { exchange: 'a.example', priority: 10 },
      { exchange: 'b.example', priority: 10 },
    ];
    const firsts = new Set<string>();
    for (let i = 0; i < 200 && firsts.size < 2; i++) firsts.add(orderMx(pair)[0]!.host);
    expect(firsts).toEqual(new Set(['a.example', 'b.example']));
  });

  it('lower-cases names, drops the trailing dot and keeps each host once at its best preference', () => {
    const hosts = orderMx([
      { exchange: 'MX.Example.', priority: 20 },
      { exchange: 'mx.example', priority: 10 },
    ]);
    expect(hosts).toEqual([{ host: 'mx.example', preference: 10, implicit: false }]);
  });
});

describe('lookupMx', () => {
  it('returns the ordered hosts', async () => {
    const dns = fakeDns();
    dns.mx.set('example.com', [
      { exchange: 'mx2.example.com', priority: 20 },
      { exchange: 'mx1.example.com', priority: 10 },
    ]);
    expect(await lookupMx(dns, 'Example.COM.')).toEqual({
      kind: 'hosts',
      hosts: [
        { host: 'mx1.example.com', preference: 10, implicit: false },
        { host: 'mx2.example.com', preference: 20, implicit: false },
      ],
    });
  });

  it('recognises a null MX (RFC 7505)', async () => {
    const dns = fakeDns();
    dns.mx.set('nomail.example', [{ exchange: '', priority: 0 }]);
    expect(await lookupMx(dns, 'nomail.example')).toEqual({ kind: 'null-mx' });
    expect(dns.calls).toEqual(['MX nomail.example']); // nothing else is looked up
  });

  it('skips a "." published next to real MX hosts', async () => {
    const dns = fakeDns();
    dns.mx.set('mixed.example', [
      { exchange: '', priority: 0 },
      { exchange: 'mx.mixed.example', priority: 10 },
    ]);
    expect(await lookupMx(dns, 'mixed.example')).toEqual({ kind: 'hosts', hosts: [{ host: 'mx.mixed.example', preference: 10, implicit: false }] });
  });

  it('uses the implicit MX when the domain has no MX but has an address', async () => {
    const dns = fakeDns();
    dns.mx.set('implicit.example', 'nodata');
    dns.addresses.set('implicit.example', ['127.0.0.5']);
    expect(await lookupMx(dns, 'implicit.example')).toEqual({ kind: 'hosts', hosts: [{ host: 'implicit.example', preference: 0, implicit: true }] });
  });

  it('reports no hosts when the domain has neither MX nor address', async () => {
    const dns = fakeDns();
    dns.mx.set('bare.example', 'nodata');
    dns.addresses.set('bare.example', 'nodata');
    expect((await lookupMx(dns, 'bare.example')).kind).toBe('no-hosts');
  });

  it('never falls back to the implicit MX on a temporary failure', async () => {
    const dns = fakeDns();
    dns.mx.set('flaky.example', 'temporary');
    dns.addresses.set('flaky.example', ['127.0.0.5']);
    expect((await lookupMx(dns, 'flaky.example')).kind).toBe('temporary');
    expect(dns.calls).toEqual(['MX flaky.example']);
  });

  it('treats NXDOMAIN as permanent', async () => {
    expect((await lookupMx(fakeDns(), 'nowhere.example')).kind).toBe('nxdomain');
  });
});

describe('resolveMxAddresses', () => {
  const hosts = ['a', 'b', 'c'].map((name, i) => ({ host: `${name}.example`, preference: i * 10, implicit: false }));

  it('caps hosts and total addresses, in order', async () => {
    const dns = fakeDns();
    dns.addresses.set('a.example', ['127.0.0.1', '127.0.0.2', '::1']);
    dns.addresses.set('b.example', ['127.0.0.3', '127.0.0.4']);
    dns.addresses.set('c.example', ['127.0.0.5']);
    const resolved = await resolveMxAddresses(dns, hosts, { maxHosts: 2, maxAddresses: 4, ipv6: true });
    expect(resolved.map((h) => [h.host, h.addresses])).toEqual([
      ['a.example', ['127.0.0.1', '127.0.0.2', '::1']],
      ['b.example', ['127.0.0.3']],
    ]);
  });

  it('records why a host has no address', async () => {
    const dns = fakeDns();
    dns.addresses.set('a.example', 'temporary');
    dns.addresses.set('b.example', 'nxdomain');
    dns.addresses.set('c.example', ['127.0.0.5']);
    const resolved = await resolveMxAddresses(dns, hosts, { maxHosts: 5, maxAddresses: 10, ipv6: true });
    expect(resolved.map((h) => h.error?.temporary ?? null)).toEqual([true, false, null]);
    expect(resolved[2]!.addresses).toEqual(['127.0.0.5']);
  });
});
