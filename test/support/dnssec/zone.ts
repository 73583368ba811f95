import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Where Debian's ldnsutils put the tools (overridable for other layouts). */
export const LDNS_KEYGEN = process.env.SEALGATE_TEST_LDNS_KEYGEN ?? '/usr/bin/ldns-keygen';
export const LDNS_SIGNZONE = process.env.SEALGATE_TEST_LDNS_SIGNZONE ?? '/usr/bin/ldns-signzone';

/** One resource record in zone-file presentation form (`data` is the rdata, e.g. `10 mx1.a.test.` or `3 1 1 ab…`). */
export interface ZoneRecord {
  /** Owner name, absolute (`mx1.a.dane.test`); a trailing dot is optional. */
  name: string;
  type: 'A' | 'AAAA' | 'MX' | 'TXT' | 'CNAME' | 'TLSA';
  data: string;
  ttl?: number;
}

export interface SignedZone {
  zone: string;
  /** Path of the signed zone file (what nsd serves). */
  file: string;
  /** The KSK's DS record in presentation form: unbound's `trust-anchor`. */
  ds: string;
}

export function fqdn(name: string): string {
  return `${name.toLowerCase().replace(/\.+$/, '')}.`;
}

/** The zone file before signing: SOA, NS (glue on 127.0.0.1, never queried: nsd is reached as a stub), records. */
export function renderZone(zone: string, records: ZoneRecord[]): string {
  const origin = fqdn(zone);
  const lines = [`$ORIGIN ${origin}`, '$TTL 300', `@ IN SOA ns.${origin} hostmaster.${origin} 1 3600 600 86400 60`, `@ IN NS ns.${origin}`, `ns.${origin} IN A 127.0.0.1`];
  for (const record of records) {
    const owner = fqdn(record.name);
    if (owner !== origin && !owner.endsWith(`.${origin}`)) throw new Error(`record ${owner} is outside zone ${origin}`);
    const data = record.type === 'TXT' ? txtStrings(record.data) : record.data;
    lines.push(`${owner} ${record.ttl ?? 300} IN ${record.type} ${data}`);
  }
  return `${lines.join('\n')}\n`;
}

/** TXT rdata as quoted character-strings of at most 255 bytes each (RFC 1035 §3.3.14): long values span several. */
function txtStrings(value: string): string {
  const chunks = value.match(/[^]{1,255}/g) ?? [''];
  return chunks.map((chunk) => `"${chunk.replace(/["\\]/g, '\\$&')}"`).join(' ');
}

/** An unsigned zone file in `dir`, as nsd serves it. */
export async function writeZone(dir: string, zone: string, records: ZoneRecord[]): Promise<{ zone: string; file: string }> {
  const name = fqdn(zone).slice(0, -1);
  const file = path.join(dir, `${name}.zone`);
  await writeFile(file, renderZone(zone, records));
  return { zone: name, file };
}

/**
 * Write, key and sign a zone in `dir`: an ECDSAP256SHA256 KSK and ZSK (ldns-keygen), NSEC3
 * (ldns-signzone -n), inception an hour back so a little clock skew does not matter.
 * Each name in `bogus` then gets its TLSA rdata changed in the signed file: the RRSIG no longer
 * verifies, which a validating resolver answers with SERVFAIL.
 */
export async function signZone(dir: string, zone: string, records: ZoneRecord[], bogus: string[] = []): Promise<SignedZone> {
  const name = fqdn(zone).slice(0, -1);
  const { file: unsigned } = await writeZone(dir, zone, records);
  const ksk = (await run(LDNS_KEYGEN, ['-a', 'ECDSAP256SHA256', '-k', name], { cwd: dir })).stdout.trim();
  const zsk = (await run(LDNS_KEYGEN, ['-a', 'ECDSAP256SHA256', name], { cwd: dir })).stdout.trim();
  const inception = stamp(new Date(Date.now() - 60 * 60 * 1000));
  await run(LDNS_SIGNZONE, ['-n', '-i', inception, '-f', `${unsigned}.signed`, unsigned, ksk, zsk], { cwd: dir });
  const file = `${unsigned}.signed`;
  if (bogus.length > 0) await writeFile(file, corruptTlsa(await readFile(file, 'utf8'), bogus));
  const ds = (await readFile(path.join(dir, `${ksk}.ds`), 'utf8')).trim().replace(/\s+/g, ' ');
  return { zone: name, file, ds };
}

/** Flip the first hex digit of the TLSA data at each owner name (RRSIG lines are left as signed). */
export function corruptTlsa(signedZone: string, owners: string[]): string {
  const wanted = new Set(owners.map(fqdn));
  const seen = new Set<string>();
  const lines = signedZone.split('\n').map((line) => {
    const fields = line.split(/\s+/);
    // owner ttl class type usage selector matching data
    if (fields[3] !== 'TLSA' || !wanted.has(fields[0]!.toLowerCase())) return line;
    seen.add(fields[0]!.toLowerCase());
    const data = fields[7]!;
    fields[7] = (data[0] === 'f' ? '0' : 'f') + data.slice(1);
    return fields.join('\t');
  });
  const missing = [...wanted].filter((owner) => !seen.has(owner));
  if (missing.length > 0) throw new Error(`no TLSA record to corrupt at ${missing.join(', ')}`);
  return lines.join('\n');
}

/** YYYYMMDDhhmmss in UTC, as ldns-signzone takes dates. */
function stamp(date: Date): string {
  return date.toISOString().replace(/[-:T]/g, '').slice(0, 14);
}
