/**
 * MTA-STS TXT record at `_mta-sts.<domain>` (RFC 8461 §3.1):
 *   sts-text-record = sts-version 1*(sts-sep sts-field) [sts-sep]
 *   sts-version = "v=STSv1"; sts-id = "id=" 1*32(ALPHA / DIGIT)
 *   sts-sep = *WSP ";" *WSP; extensions: name 1*32 [A-Za-z0-9_.-], value without "=", ";", space or CTL.
 */

export interface StsRecord {
  id: string;
  /** Unknown fields, kept for evidence only. */
  extensions: Record<string, string>;
}

export type StsRecordResult = { ok: true; record: StsRecord } | { ok: false; reason: string };

const FIELD_NAME = /^[A-Za-z0-9_.-]{1,32}$/;
const FIELD_VALUE = /^[\x21-\x3a\x3c\x3e-\x7e]+$/; // printable ASCII except ";" and "="
const ID = /^[A-Za-z0-9]{1,32}$/;

/** Parses one TXT record (its strings already joined). */
export function parseStsRecord(text: string): StsRecordResult {
  if (!text.startsWith('v=STSv1')) return { ok: false, reason: 'record does not start with "v=STSv1"' };
  const fields = text.split(/[ \t]*;[ \t]*/);
  // One trailing separator is allowed: it leaves a single empty last field.
  if (fields.length > 1 && fields[fields.length - 1] === '') fields.pop();
  if (fields[0] !== 'v=STSv1') return { ok: false, reason: `bad version field "${fields[0]}"` };
  if (fields.length < 2) return { ok: false, reason: 'record has no id field' };
  let id: string | undefined;
  const extensions: Record<string, string> = {};
  for (const field of fields.slice(1)) {
    const eq = field.indexOf('=');
    if (eq <= 0) return { ok: false, reason: `malformed field "${field}"` };
    const name = field.slice(0, eq);
    const value = field.slice(eq + 1);
    if (!FIELD_NAME.test(name)) return { ok: false, reason: `malformed field name "${name}"` };
    if (name === 'id') {
      if (!ID.test(value)) return { ok: false, reason: `id "${value}" is not 1 to 32 letters and digits` };
      if (id !== undefined) return { ok: false, reason: 'record has more than one id field' };
      id = value;
    } else {
      if (!FIELD_VALUE.test(value)) return { ok: false, reason: `malformed value of field "${name}"` };
      if (name === 'v') return { ok: false, reason: 'record has more than one version field' };
      extensions[name] = value;
    }
  }
  if (id === undefined) return { ok: false, reason: 'record has no id field' };
  return { ok: true, record: { id, extensions } };
}

/**
 * Picks the policy record from every TXT record at `_mta-sts.<domain>`: records not starting with
 * `v=STSv1;` are ignored; anything but exactly one valid record means no policy record.
 */
export function selectStsRecord(records: readonly string[]): StsRecordResult {
  const candidates = records.filter((record) => /^v=STSv1(?:[ \t]*;|$)/.test(record));
  if (candidates.length === 0) return { ok: false, reason: 'no TXT record starting with "v=STSv1"' };
  if (candidates.length > 1) return { ok: false, reason: `${candidates.length} TXT records start with "v=STSv1" (exactly one is allowed)` };
  return parseStsRecord(candidates[0]!);
}
