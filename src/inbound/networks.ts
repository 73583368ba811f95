import { isIP, type BlockList } from 'node:net';

const MAPPED_IPV4 = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;

/**
 * True when a client address lies in one of the networks of `list` (built by `networkList`).
 * `BlockList.check` assumes IPv4 unless told the family, so an IPv6 client would never match;
 * this passes the family. An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, what a dual-stack
 * socket reports for an IPv4 client) matches both the IPv4 network and an IPv6 entry covering it.
 */
export function inNetworks(list: BlockList, ip: string): boolean {
  const family = isIP(ip);
  if (family === 0) return false;
  if (family === 4) return list.check(ip, 'ipv4');
  if (list.check(ip, 'ipv6')) return true;
  const mapped = MAPPED_IPV4.exec(ip);
  return mapped !== null && isIP(mapped[1]!) === 4 && list.check(mapped[1]!, 'ipv4');
}
