import { createHash, X509Certificate } from 'node:crypto';
import type { DaneMatch, DaneState, TlsaRecord } from './types';

/**
 * RFC 7672 certificate matching: which TLSA records an SMTP client may use, and whether the chain a
 * server sent matches one of them. Pure (no sockets, no clock of its own): the session judge calls it
 * with the chain it read off the TLS socket.
 */

/**
 * Why a chain did not authenticate the server. The TLS-RPT report maps these to RFC 8460 result types,
 * so they are a closed set:
 * - `dane-no-match`: no usable record matches the leaf (DANE-EE) or a CA certificate of the chain (DANE-TA);
 * - `dane-ta-chain`: a DANE-TA record matched a CA certificate, but the leaf does not chain to it by signature;
 * - `dane-ta-expired`: the chain to the matched trust anchor verifies, but one of its certificates is outside its validity;
 * - `dane-ta-name-mismatch`: chain and dates are fine, but the leaf names none of the reference names.
 */
export type DaneFailureCode = 'dane-no-match' | 'dane-ta-chain' | 'dane-ta-expired' | 'dane-ta-name-mismatch';

/** The planner's code for a host whose TLSA lookup was bogus or failed (SERVFAIL, timeout): the host is not used. */
export const DANE_TLSA_BOGUS = 'dane-tlsa-bogus';

export type DaneChainResult = { ok: true; match: DaneMatch } | { ok: false; code: DaneFailureCode; reason: string };

/**
 * What DANE said about one session, as evidence records it:
 * - `match`: a usable record matched (`match` names it);
 * - `no-usable-records`: secure TLSA records, none usable: TLS was mandatory, the certificate was not checked;
 * - a DaneFailureCode: usable records, none matched;
 * - `not-applicable`: DANE does not apply to this host (state insecure or no-tlsa);
 * - `not-checked`: DANE applies but no TLS session was established to check.
 */
export type DaneResultCode = 'match' | 'no-usable-records' | DaneFailureCode | 'not-applicable' | 'not-checked';

export interface DaneSessionResult {
  state: DaneState;
  match: DaneMatch | null;
  result: DaneResultCode;
}

/** Usage 2 (DANE-TA) or 3 (DANE-EE), selector 0 (certificate) or 1 (SPKI), matching type 0 (exact), 1 (SHA-256) or 2 (SHA-512). */
export function isUsableRecord(record: TlsaRecord): boolean {
  return (record.usage === 2 || record.usage === 3) && (record.selector === 0 || record.selector === 1) && record.matchingType >= 0 && record.matchingType <= 2 && /^[0-9a-f]+$/i.test(record.data);
}

/** The records an SMTP client may use (RFC 7672 §3.1: PKIX-TA(0) and PKIX-EE(1) are unusable for SMTP). */
export function usableRecords(records: readonly TlsaRecord[]): TlsaRecord[] {
  return records.filter(isUsableRecord);
}

/** `3 1 1` style, as operators write TLSA records. */
export function describeRecord(record: Pick<TlsaRecord, 'usage' | 'selector' | 'matchingType'>): string {
  return `${record.usage} ${record.selector} ${record.matchingType}`;
}

interface ParsedCertificate {
  x509: X509Certificate;
  der: Buffer;
  spki: Buffer;
}

function parse(der: Buffer): ParsedCertificate | null {
  try {
    const x509 = new X509Certificate(der);
    return { x509, der, spki: x509.publicKey.export({ type: 'spki', format: 'der' }) };
  } catch {
    return null;
  }
}

/** The association data a record's selector and matching type compute from a certificate, lower-case hex. */
export function associationData(der: Buffer, selector: number, matchingType: number): string | null {
  const cert = parse(der);
  if (!cert) return null;
  return digest(selector === 0 ? cert.der : cert.spki, matchingType);
}

function digest(bytes: Buffer, matchingType: number): string | null {
  if (matchingType === 0) return bytes.toString('hex');
  if (matchingType === 1) return createHash('sha256').update(bytes).digest('hex');
  if (matchingType === 2) return createHash('sha512').update(bytes).digest('hex');
  return null;
}

function matches(record: TlsaRecord, cert: ParsedCertificate): boolean {
  const data = digest(record.selector === 0 ? cert.der : cert.spki, record.matchingType);
  return data !== null && data === record.data.toLowerCase();
}

/** How far a DANE-TA attempt got, so the most telling failure is the one reported. */
const FAILURE_RANK: Record<DaneFailureCode, number> = { 'dane-no-match': 0, 'dane-ta-chain': 1, 'dane-ta-expired': 2, 'dane-ta-name-mismatch': 3 };

/**
 * Matches a server's certificate chain (DER, leaf first, as sent) against TLSA records. Unusable records are
 * ignored. DANE-EE (3): the leaf's certificate or SPKI must match; its names and dates do not matter. DANE-TA (2):
 * a CA certificate the server sent must match; the leaf must chain to it by signature through the certificates
 * sent, every certificate on that path (leaf and trust anchor included) must be within its validity at `now`, and
 * the leaf must name one of `referenceNames` (RFC 6125: DNS-ID, else CN; a wildcard only as the whole left-most label).
 */
export function matchChain(records: readonly TlsaRecord[], chainDer: readonly Buffer[], options: { referenceNames: readonly string[]; now: number | Date }): DaneChainResult {
  const usable = usableRecords(records);
  const chain = chainDer.map(parse);
  const leaf = chain[0] ?? null;
  if (!leaf) return { ok: false, code: 'dane-no-match', reason: chainDer.length === 0 ? 'the server sent no certificate' : 'the server certificate could not be parsed' };

  for (const record of usable) {
    if (record.usage === 3 && matches(record, leaf)) return { ok: true, match: { ...record, data: record.data.toLowerCase(), depth: 0 } };
  }

  const now = typeof options.now === 'number' ? options.now : options.now.getTime();
  let failure: { code: DaneFailureCode; reason: string } = {
    code: 'dane-no-match',
    reason: `no usable TLSA record (${usable.map(describeRecord).join(', ') || 'none'}) matches the certificate chain`,
  };
  const fail = (code: DaneFailureCode, reason: string) => {
    if (FAILURE_RANK[code] > FAILURE_RANK[failure.code]) failure = { code, reason };
  };
  for (const record of usable) {
    if (record.usage !== 2) continue;
    for (let depth = 1; depth < chain.length; depth++) {
      const anchor = chain[depth];
      if (!anchor || !anchor.x509.ca || !matches(record, anchor)) continue;
      const label = `DANE-TA ${describeRecord(record)} matched ${anchor.x509.subject.replace(/\n/g, ', ')} at depth ${depth}`;
      const path = pathTo(leaf, anchor, chain);
      if (!path) {
        fail('dane-ta-chain', `${label}, but the server certificate does not chain to it`);
        continue;
      }
      const stale = path.find((cert) => !withinValidity(cert.x509, now));
      if (stale) {
        fail('dane-ta-expired', `${label}, but ${stale.x509.subject.replace(/\n/g, ', ')} is outside its validity (${stale.x509.validFrom} to ${stale.x509.validTo})`);
        continue;
      }
      if (!options.referenceNames.some((name) => namesHost(leaf.x509, name))) {
        fail('dane-ta-name-mismatch', `${label}, but the server certificate names none of ${options.referenceNames.join(', ')}`);
        continue;
      }
      return { ok: true, match: { ...record, data: record.data.toLowerCase(), depth } };
    }
  }
  return { ok: false, ...failure };
}

/**
 * The path from the leaf up to the trust anchor through the certificates the server sent, each one issued and
 * signed by the next; null when there is none. Bounded by the chain's length (no loops).
 */
function pathTo(leaf: ParsedCertificate, anchor: ParsedCertificate, chain: ReadonlyArray<ParsedCertificate | null>): ParsedCertificate[] | null {
  const pool = chain.filter((cert): cert is ParsedCertificate => cert !== null);
  const path = [leaf];
  let current = leaf;
  for (let step = 0; step < pool.length; step++) {
    if (signedBy(current, anchor)) return [...path, anchor];
    const next = pool.find((cert) => cert !== anchor && cert.x509.ca && !path.includes(cert) && signedBy(current, cert));
    if (!next) return null;
    path.push(next);
    current = next;
  }
  return null;
}

function signedBy(cert: ParsedCertificate, issuer: ParsedCertificate): boolean {
  try {
    return cert.x509.checkIssued(issuer.x509) && cert.x509.verify(issuer.x509.publicKey);
  } catch {
    return false;
  }
}

function withinValidity(cert: X509Certificate, now: number): boolean {
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  return !Number.isNaN(from) && !Number.isNaN(to) && from <= now && now <= to;
}

function namesHost(cert: X509Certificate, name: string): boolean {
  const host = name.toLowerCase().replace(/\.$/, '');
  if (!host) return false;
  return cert.checkHost(host, { partialWildcards: false, multiLabelWildcards: false, singleLabelSubdomains: false }) !== undefined;
}
