/**
 * The TLS-RPT policy record at `_smtp._tls.<domain>` (RFC 8460 §3), parsed strictly:
 *   tlsrpt-record = "v=TLSRPTv1" 1*(field-delim tlsrpt-field) [field-delim]; field-delim = *WSP ";" *WSP
 *   tlsrpt-rua    = "rua=" tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)   (",", "!" and ";" percent-encoded in a URI)
 *   tlsrpt-ext    = 1*32(ALPHA / DIGIT / "_" / "-" / ".") "=" 1*(%x21-3A / %x3C / %x3E-7E)   (ignored)
 * Only `mailto:` and `https:` URIs are accepted; anything else makes the record invalid (no report).
 */

import { isFieldValue, parseTaggedFields, selectTaggedRecord, type TaggedRecordResult } from '../policy/tagged-record';

export type ReportDestination = { kind: 'mailto'; uri: string; address: string } | { kind: 'https'; uri: string; url: string };

export interface TlsRptRecord {
  rua: ReportDestination[];
  /** Unknown fields, kept for the log only. */
  extensions: Record<string, string>;
}

export type TlsRptRecordResult = TaggedRecordResult<TlsRptRecord>;

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
  let rua: ReportDestination[] | undefined;
  const extensions: Record<string, string> = {};
  const rejected = parseTaggedFields(text, 'v=TLSRPTv1', (name, value) => {
    if (name === 'rua') {
      if (rua !== undefined) return 'record has more than one rua field';
      const uris = value.split(/[ \t]*,[ \t]*/);
      if (uris.some((u) => u === '')) return 'rua has an empty URI';
      rua = [];
      for (const uri of uris) {
        const parsed = parseUri(uri);
        if (typeof parsed === 'string') return parsed;
        rua.push(parsed);
      }
    } else {
      if (name === 'v') return 'record has more than one version field';
      if (!isFieldValue(value)) return `malformed value of field "${name}"`;
      extensions[name] = value;
    }
    return undefined;
  });
  if (rejected !== null) return { ok: false, reason: rejected };
  if (!rua) return { ok: false, reason: 'record has no rua field' };
  return { ok: true, record: { rua, extensions } };
}

/**
 * Picks the policy record from every TXT record at `_smtp._tls.<domain>`: records not starting with
 * `v=TLSRPTv1;` are discarded; anything but exactly one valid record means no reporting.
 */
export function selectTlsRptRecord(records: readonly string[]): TlsRptRecordResult {
  return selectTaggedRecord(records, /^v=TLSRPTv1[ \t]*;/, 'v=TLSRPTv1;', parseTlsRptRecord);
}
