import { DnsError, normalizeName, type DnsResolver } from '../resolver';
import { usableRecords } from './match';
import type { DaneHostPolicy, TlsaRecord } from './types';

/** What the planner knows of one MX host when it asks for DANE. */
export interface DaneHostInput {
  /** The MX host name (or the domain, for the implicit MX). */
  host: string;
  /** The next-hop domain (a DANE-TA certificate may name it). */
  domain: string;
  /** The MX RRset (or, for the implicit MX, the domain's address answer) was DNSSEC-secure. */
  mxSecure: boolean;
  /** Every address answer for the host was secure. */
  addressesSecure: boolean;
  /** Where the host's CNAME chain ended (the host itself without one). */
  canonicalName: string;
}

/**
 * The DANE state of one MX host (RFC 7672 §2.2): insecure when the MX or address answers were not signed,
 * else the TLSA RRset at `_25._tcp.<host>` decides: secure records → `secure-tlsa`, none → `no-tlsa`,
 * SERVFAIL or no answer → `bogus` (the host is not used), an unsigned answer → `insecure`. A CNAME'd host is
 * looked up at the CNAME-expanded name first, then at the original name (§2.2.2).
 */
export async function daneHostPolicy(resolver: Pick<DnsResolver, 'resolveTlsa'>, input: DaneHostInput): Promise<DaneHostPolicy> {
  const host = normalizeName(input.host);
  const domain = normalizeName(input.domain);
  const canonical = normalizeName(input.canonicalName);
  const base = { records: [] as TlsaRecord[], usable: [] as TlsaRecord[], referenceNames: unique([host, domain]), tlsaName: null };
  if (!input.mxSecure)
    return { ...base, state: 'insecure', reason: host === domain ? `the address records of ${domain} (implicit MX) are not DNSSEC-signed` : `the MX records of ${domain} are not DNSSEC-signed` };
  if (!input.addressesSecure) return { ...base, state: 'insecure', reason: `the address records of ${host} are not DNSSEC-signed` };

  const names = canonical !== host ? [canonical, host] : [host];
  let insecureAt: string | null = null;
  for (const name of names) {
    const tlsaName = `_25._tcp.${name}`;
    let answer: { value: TlsaRecord[]; secure: boolean };
    try {
      answer = await resolver.resolveTlsa(tlsaName);
    } catch (err) {
      if (!(err instanceof DnsError)) throw err;
      if (err.temporary) return { ...base, state: 'bogus', tlsaName, reason: `TLSA lookup at ${tlsaName} failed (${err.code}): bogus or unanswered, so ${host} is not used` };
      continue;
    }
    if (!answer.secure) {
      insecureAt ??= tlsaName;
      continue;
    }
    if (answer.value.length === 0) continue;
    const records = answer.value.map((r) => ({ usage: r.usage, selector: r.selector, matchingType: r.matchingType, data: r.data.toLowerCase() }));
    const usable = usableRecords(records);
    // A certificate may name the CNAME-expanded host when the records were found there (§2.2.2).
    const referenceNames = unique(name === canonical && canonical !== host ? [host, canonical, domain] : [host, domain]);
    return {
      state: 'secure-tlsa',
      records,
      usable,
      referenceNames,
      tlsaName,
      reason:
        usable.length > 0
          ? `${usable.length} usable TLSA record(s) at ${tlsaName}: the certificate must match one`
          : `secure TLSA records at ${tlsaName}, none usable (usage 0/1 or unknown parameters): TLS is mandatory, the certificate is not checked`,
    };
  }
  if (insecureAt) return { ...base, state: 'insecure', tlsaName: insecureAt, reason: `the TLSA records at ${insecureAt} are not DNSSEC-signed` };
  return { ...base, state: 'no-tlsa', reason: `no TLSA records at ${names.map((n) => `_25._tcp.${n}`).join(' or ')}` };
}

function unique(names: string[]): string[] {
  return [...new Set(names.filter(Boolean))];
}
