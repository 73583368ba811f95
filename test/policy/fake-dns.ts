import { DnsError, type DnsResolver, type MxAnswer } from '../../src/policy/resolver';

/** An in-memory DnsResolver for unit tests of the logic above DNS (MX, MTA-STS, plans). */
export interface FakeDns extends Pick<DnsResolver, 'resolveMx' | 'resolveTxt' | 'resolveAddresses'> {
  mx: Map<string, MxAnswer[] | 'nxdomain' | 'nodata' | 'temporary'>;
  txt: Map<string, string[] | 'nxdomain' | 'nodata' | 'temporary'>;
  addresses: Map<string, string[] | 'nxdomain' | 'nodata' | 'temporary'>;
  calls: string[];
}

function answer<T>(type: string, name: string, value: T[] | 'nxdomain' | 'nodata' | 'temporary' | undefined): T[] {
  if (value === undefined || value === 'nxdomain') throw new DnsError('nxdomain', `${type} ${name}`, 'ENOTFOUND');
  if (value === 'nodata') throw new DnsError('nodata', `${type} ${name}`, 'ENODATA');
  if (value === 'temporary') throw new DnsError('temporary', `${type} ${name}`, 'ESERVFAIL');
  return value;
}

export function fakeDns(): FakeDns {
  const dns: FakeDns = {
    mx: new Map(),
    txt: new Map(),
    addresses: new Map(),
    calls: [],
    async resolveMx(name) {
      dns.calls.push(`MX ${name}`);
      return answer('MX', name, dns.mx.get(name));
    },
    async resolveTxt(name) {
      dns.calls.push(`TXT ${name}`);
      return answer('TXT', name, dns.txt.get(name));
    },
    async resolveAddresses(name) {
      dns.calls.push(`ADDR ${name}`);
      return answer('A', name, dns.addresses.get(name));
    },
  };
  return dns;
}
