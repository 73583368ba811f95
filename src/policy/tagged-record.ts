/**
 * The TXT record syntax MTA-STS (RFC 8461 §3.1) and TLS-RPT (RFC 8460 §3) share:
 *   record = version 1*(sep field) [sep]; sep = *WSP ";" *WSP; field = name "=" value
 *   name = 1*32(ALPHA / DIGIT / "_" / "-" / "."); an extension value has no "=", ";", space or CTL.
 * Splitting and the record selection live here; what each field means stays with each parser.
 */

export type TaggedRecordResult<T> = { ok: true; record: T } | { ok: false; reason: string };

const FIELD_NAME = /^[A-Za-z0-9_.-]{1,32}$/;
const FIELD_VALUE = /^[\x21-\x3a\x3c\x3e-\x7e]+$/; // printable ASCII except ";" and "="

/** Whether a value is a valid extension field value (printable ASCII without ";" and "="). */
export function isFieldValue(value: string): boolean {
  return FIELD_VALUE.test(value);
}

/**
 * Splits a record that must start with exactly `version` and hands each later field, in order, to `onField`,
 * which returns a reason to reject the record (the first reason wins) or undefined. A field without a name or
 * "=", or with a malformed name, rejects the record. Returns null when every field was accepted.
 */
export function parseTaggedFields(text: string, version: string, onField: (name: string, value: string) => string | undefined): string | null {
  const fields = text.split(/[ \t]*;[ \t]*/);
  // One trailing separator is allowed: it leaves a single empty last field.
  if (fields.length > 1 && fields[fields.length - 1] === '') fields.pop();
  if (fields[0] !== version) return `bad version field "${fields[0] ?? ''}"`;
  for (const field of fields.slice(1)) {
    const eq = field.indexOf('=');
    if (eq <= 0) return `malformed field "${field}"`;
    const name = field.slice(0, eq);
    const value = field.slice(eq + 1);
    if (!FIELD_NAME.test(name)) return `malformed field name "${name}"`;
    const rejected = onField(name, value);
    if (rejected !== undefined) return rejected;
  }
  return null;
}

/**
 * Picks the one policy record from every TXT record at a name: records `starts` does not match are discarded;
 * none or more than one left is no record (`label` names the prefix in the reason); the one left is parsed.
 */
export function selectTaggedRecord<T>(records: readonly string[], starts: RegExp, label: string, parse: (text: string) => TaggedRecordResult<T>): TaggedRecordResult<T> {
  const candidates = records.filter((record) => starts.test(record));
  if (candidates.length === 0) return { ok: false, reason: `no TXT record starting with "${label}"` };
  if (candidates.length > 1) return { ok: false, reason: `${candidates.length} TXT records start with "${label}" (exactly one is allowed)` };
  return parse(candidates[0]!);
}
