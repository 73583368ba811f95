import type { World, WorldSpec } from '../world';
import { fqdn, type ZoneRecord } from './zone';

/** The MTA-STS HTTPS server's address in the test world (see world/index.ts). */
const MTA_STS_ADDRESS = '127.0.0.3';

/**
 * The mail records of every spec domain inside `zone`, as the world DNS has them (MX, the MX
 * hosts' A records, `_mta-sts` TXT and `mta-sts` A), ready to be signed. TLSA records are the
 * caller's: they depend on the scenario. `cnames` turns an MX host into an alias (RFC 7672 §2.2.2):
 * `host CNAME target` and the address at `target`.
 */
export function worldZoneRecords(world: World, spec: WorldSpec, zone: string, options: { cnames?: Record<string, string> } = {}): ZoneRecord[] {
  const inZone = (name: string): boolean => fqdn(name) === fqdn(zone) || fqdn(name).endsWith(`.${fqdn(zone)}`);
  const records: ZoneRecord[] = [];
  const hosts = new Set<string>();
  for (const [domain, domainSpec] of Object.entries(spec)) {
    if (!inZone(domain)) continue;
    for (const [index, mx] of (domainSpec.mx ?? []).entries()) {
      records.push({ name: domain, type: 'MX', data: `${mx.preference ?? 10 * (index + 1)} ${fqdn(mx.host)}` });
      hosts.add(mx.host);
    }
    if (domainSpec.implicitMx) hosts.add(domain);
    if (domainSpec.nullMx) records.push({ name: domain, type: 'MX', data: '0 .' });
    if (domainSpec.mtaSts) {
      for (const txt of domainSpec.mtaSts.txt ?? [`v=STSv1; id=${domainSpec.mtaSts.id ?? '20261127T000000'};`]) records.push({ name: `_mta-sts.${domain}`, type: 'TXT', data: txt });
      records.push({ name: `mta-sts.${domain}`, type: 'A', data: MTA_STS_ADDRESS });
    }
  }
  for (const host of hosts) {
    if (!inZone(host)) continue;
    const target = options.cnames?.[host];
    if (target) records.push({ name: host, type: 'CNAME', data: fqdn(target) }, { name: target, type: 'A', data: world.addressOf(host) });
    else records.push({ name: host, type: 'A', data: world.addressOf(host) });
  }
  return records;
}
