/**
 * The TLS-RPT policy record at `_smtp._tls.<domain>` (RFC 8460 §3), parsed strictly:
 *   tlsrpt-record = "v=TLSRPTv1" 1*(field-delim tlsrpt-field) [field-delim]; field-delim = *WSP ";" *WSP
 *   tlsrpt-rua    = "rua=" tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)   (",", "!" and ";" percent-encoded in a URI)
 *   tlsrpt-ext    = 1*32(ALPHA / DIGIT / "_" / "-" / ".") "=" 1*(%x21-3A / %x3C / %x3E-7E)   (ignored)
 * Only `mailto:` and `https:` URIs are accepted; anything else makes the record invalid (no report).
 */

export type ReportDestination = { kind: 'mailto'; uri: string; address: string } | { kind: 'https'; uri: string; url: string };

export interface TlsRptRecord {
  rua: ReportDestination[];
  /** Unknown fields, kept for the log only. */
  extensions: Record<string, string>;
}

export type TlsRptRecordResult = { ok: true; record: TlsRptRecord } | { ok: false; reason: string };

const FIELD_NAME = /^[A-Za-z0-9_.-]{1,32}$/;
const FIELD_VALUE = /^[\x21-\x3a\x3c\x3e-\x7e]+$/; // printable ASCII except ";" and "="
/** A URI's characters (RFC 3986 unreserved, reserved but "!" "," ";", and "%"); "!" would be a size limit in DMARC, so it must be encoded. */
const URI_CHARS = /^[A-Za-z0-9\-._~:/?#[\]@$&'()*+=%]+$/;
const PERCENT = /%(?![0-9A-Fa-f]{2})/;
const ADDRESS = /^[^\s@<>()[\]\\,;:"]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

/** The TXT name of a domain's TLS-RPT record. */
export function tlsRptRecordName(domain: string): string {
  return `_smtp._tls.${domain.replace(/\.$/, '').toLowerCase()}`;
}

function parseUri(uri: string): ReportDestination | string {
  if (!URI_CHARS.test(uri)) return `rua URI "${uri}" has characters that must be percent-encoded`;
  if (PERCENT.test(uri)) return `rua URI "${uri}" has a malformed percent-encoding`;
  const colon = uri.indexOf(':');
  const scheme = colon > 0 ? uri.slice(0, colon).toLowerCase() : '';
  if (scheme === 'mailto') {
    const rest = uri.slice(colon + 1);
    if (rest.includes('?')) return `rua URI "${uri}": mailto with header fields is not supported`;
    let address: string;
    try {
      address = decodeURIComponent(rest);
    } catch {
      return `rua URI "${uri}" has a malformed percent-encoding`;
    }
    if (!ADDRESS.test(address)) return `rua URI "${uri}" is not a mailto: with one address`;
    return { kind: 'mailto', uri, address };
  }
  if (scheme === 'https') {
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      return `rua URI "${uri}" is not a valid https URL`;
    }
    if (!url.hostname || url.username || url.password) return `rua URI "${uri}" is not a valid https URL`;
    return { kind: 'https', uri, url: url.href };
  }
  return `rua URI "${uri}" has scheme "${scheme || 'none'}" (only mailto: and https: are allowed)`;
}

/** Parses one TXT record (its strings already joined). */
export function parseTlsRptRecord(text: string): TlsRptRecordResult {
  const fields = text.split(/[ \t]*;[ \t]*/);
  if (fields.length > 1 && fields[fields.length - 1] === '') fields.pop();
  if (fields[0] !== 'v=TLSRPTv1') return { ok: false, reason: `bad version field "${fields[0] ?? ''}"` };
  let rua: ReportDestination[] | undefined;
  const extensions: Record<string, string> = {};
  for (const field of fields.slice(1)) {
    const eq = field.indexOf('=');
    if (eq <= 0) return { ok: false, reason: `malformed field "${field}"` };
    const name = field.slice(0, eq);
    const value = field.slice(eq + 1);
    if (!FIELD_NAME.test(name)) return { ok: false, reason: `malformed field name "${name}"` };
    if (name === 'rua') {
      if (rua !== undefined) return { ok: false, reason: 'record has more than one rua field' };
      const uris = value.split(/[ \t]*,[ \t]*/);
      if (uris.some((u) => u === '')) return { ok: false, reason: 'rua has an empty URI' };
      rua = [];
      for (const uri of uris) {
        const parsed = parseUri(uri);
        if (typeof parsed === 'string') return { ok: false, reason: parsed };
        rua.push(parsed);
      }
    } else {
      if (name === 'v') return { ok: false, reason: 'record has more than one version field' };
      if (!FIELD_VALUE.test(value)) return { ok: false, reason: `malformed value of field "${name}"` };
      extensions[name] = value;
    }
  }
  if (!rua) return { ok: false, reason: 'record has no rua field' };
  return { ok: true, record: { rua, extensions } };
}

/**
 * Picks the policy record from every TXT record at `_smtp._tls.<domain>`: records not starting with
 * `v=TLSRPTv1;` are discarded; anything but exactly one valid record means no reporting.
 */
export function selectTlsRptRecord(records: readonly string[]): TlsRptRecordResult {
  const candidates = records.filter((record) => /^v=TLSRPTv1[ \t]*;/.test(record));
  if (candidates.length === 0) return { ok: false, reason: 'no TXT record starting with "v=TLSRPTv1;"' };
  if (candidates.length > 1) return { ok: false, reason: `${candidates.length} TXT records start with "v=TLSRPTv1;" (exactly one is allowed)` };
  return parseTlsRptRecord(candidates[0]!);
}
