import { CHECKED_TEXTS, CheckedTexts, checkJson, checkJsonCached, checkMessage, fallbackSchema } from '../schema';
import type { FallbackItem, MessageRecord, QuarantineCode } from '../types';

/** What one stored text is: a usable record, damage (with the quarantine code and a reason), or nothing. */
export type Decoded<T> = { value: T } | { problem: string; code: QuarantineCode } | { gone: true };

/** Message texts that passed the schema lately: a record read again unchanged (claim, body, result) is not checked again. */
const checkedMessages = new CheckedTexts(CHECKED_TEXTS);

/** A message record's text, checked against the schema (a damaged record is reported, never thrown by a decoder). */
export function decodeMessage(text: string | undefined, id: string): Decoded<MessageRecord> {
  return decode<MessageRecord>(text, (raw) => checkJsonCached(checkedMessages, raw, id, 'message record', (value) => checkMessage(value, id)));
}

export function decodeFallback(text: string | undefined, id: string): Decoded<FallbackItem> {
  return decode<FallbackItem>(text, (raw) => checkJson<FallbackItem>(fallbackSchema, raw, 'fallback item', id));
}

function decode<T>(text: string | undefined, check: (raw: string) => ReturnType<typeof checkJson<T>>): Decoded<T> {
  if (text === undefined) return { gone: true };
  const checked = check(text);
  return checked.ok ? { value: checked.value } : { problem: checked.reason, code: checked.code };
}

export function encode(value: MessageRecord | FallbackItem): string {
  return JSON.stringify(value);
}
