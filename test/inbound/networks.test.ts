import { networkList } from '../../src/config/schema';
import { inNetworks } from '../../src/inbound/networks';

describe('inNetworks (trusted-network membership of a client address)', () => {
  test('IPv4 clients match IPv4 networks only', () => {
    const list = networkList(['127.0.0.0/8', '192.0.2.0/24']);
    expect(inNetworks(list, '127.0.0.1')).toBe(true);
    expect(inNetworks(list, '192.0.2.200')).toBe(true);
    expect(inNetworks(list, '198.51.100.1')).toBe(false);
  });

  test('IPv6 clients match IPv6 networks (BlockList.check without the family would say no)', () => {
    const list = networkList(['::1/128', '2001:db8::/32']);
    // The bug this helper exists for: the default family is IPv4.
    expect(list.check('::1')).toBe(false);
    expect(inNetworks(list, '::1')).toBe(true);
    expect(inNetworks(list, '2001:db8:1::25')).toBe(true);
    expect(inNetworks(list, '2001:db9::1')).toBe(false);
    expect(inNetworks(list, '::2')).toBe(false);
  });

  test('an IPv4-mapped IPv6 client (dual-stack socket) matches the IPv4 network it maps to', () => {
    const list = networkList(['10.0.0.0/8']);
    expect(inNetworks(list, '::ffff:10.1.2.3')).toBe(true);
    expect(inNetworks(list, '::FFFF:10.1.2.3')).toBe(true);
    expect(inNetworks(list, '::ffff:a01:203')).toBe(true);
    expect(inNetworks(list, '::ffff:11.1.2.3')).toBe(false);
    // A mapped address is not a different host from its IPv4 form, and vice versa.
    expect(inNetworks(networkList(['::ffff:10.0.0.0/104']), '10.1.2.3')).toBe(true);
  });

  test('an IPv6 list does not admit IPv4 clients, nor an IPv4 list IPv6 ones', () => {
    expect(inNetworks(networkList(['2001:db8::/32', '::1/128']), '127.0.0.1')).toBe(false);
    expect(inNetworks(networkList(['0.0.0.0/0']), '::1')).toBe(false);
  });

  test('anything that is not an IP address is never trusted', () => {
    const list = networkList(['0.0.0.0/0', '::/0']);
    expect(inNetworks(list, '')).toBe(false);
    expect(inNetworks(list, 'localhost')).toBe(false);
    expect(inNetworks(list, '::ffff:999.1.2.3')).toBe(false);
  });
});
