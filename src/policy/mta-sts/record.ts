/**
 * MTA-STS TXT record at `_mta-sts.<domain>` (RFC 8461 §3.1):
 *   sts-text-record = sts-version 1*(sts-sep sts-field) [sts-sep]
 *   sts-version = "v=STSv1"; sts-id = "id=" 1*32(ALPHA / DIGIT)
 *   sts-sep = *WSP ";" *WSP; extensions: name 1*32 [A-Za-z0-9_.-], value without "=", ";", space or CTL.
 */

import { isFieldValue, parseTaggedFields, selectTaggedRecord, type TaggedRecordResult } from '../tagged-record';

export interface StsRecord {
  id: string;
  /** Unknown fields, kept for evidence only. */
  extensions: Record<string, string>;
}

export type StsRecordResult = TaggedRecordResult<StsRecord>;

const ID = /^[A-Za-z0-9]{1,32}$/;

/** Parses one TXT record (its strings already joined). */
export function parseStsRecord(text: string): StsRecordResult {
  if (!text.startsWith('v=STSv1')) return { ok: false, reason: 'record does not start with "v=STSv1"' };
  let id: string | undefined;
  const extensions: Record<string, string> = {};
  const rejected = parseTaggedFields(text, 'v=STSv1', (name, value) => {
    if (name === 'id') {
      if (!ID.test(value)) return `id "${value}" is not 1 to 32 letters and digits`;
      if (id !== undefined) return 'record has more than one id field';
      id = value;
    } else {
      if (!isFieldValue(value)) return `malformed value of field "${name}"`;
      if (name === 'v') return 'record has more than one version field';
      extensions[name] = value;
    }
    return undefined;
  });
  if (rejected !== null) return { ok: false, reason: rejected };
  if (id === undefined) return { ok: false, reason: 'record has no id field' };
  return { ok: true, record: { id, extensions } };
}

/**
 * Picks the policy record from every TXT record at `_mta-sts.<domain>`: records not starting with
 * `v=STSv1;` are ignored; anything but exactly one valid record means no policy record.
 */
export function selectStsRecord(records: readonly string[]): StsRecordResult {
  return selectTaggedRecord(records, /^v=STSv1(?:[ \t]*;|$)/, 'v=STSv1', parseStsRecord);
}
