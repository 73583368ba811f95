import type { HeaderFacts } from '../store/types';

/**
 * Extracts the header facts kept as metadata (never logged) from the header block only: the body is never
 * read, so a 50 MB message costs no more than its headers.
 *
 * The facts are exactly what mailparser made of the block (the stored facts must not change with the parser):
 * the first non-empty Message-ID, in angle brackets; the first From as sent (unfolded, its bytes read one
 * character each); the first Date as an ISO time, the time of parsing when it does not parse; TLS-Required
 * when it is given once with a value. A plain block (CRLF lines, named fields, no encoded word in a Message-ID)
 * is read here directly, which is what nearly every submission is; anything else still goes through mailparser,
 * loaded then.
 */
export async function extractHeaderFacts(headerBlock: Buffer): Promise<HeaderFacts> {
  if (headerBlock.length === 0) return {};
  return plainHeaderFacts(headerBlock) ?? parsedHeaderFacts(headerBlock);
}

const FOLD = /^[ \t]/;
const MBOX_OR_HTTP = /^(?:From |POST )/i;

/** The facts of a plain header block, or undefined when it is not one (then mailparser decides). */
export function plainHeaderFacts(headerBlock: Buffer): HeaderFacts | undefined {
  // One character per byte, as mailparser's splitter reads headers.
  const raw = headerBlock.toString('latin1');
  let end = raw.length;
  while (end > 0 && (raw.charCodeAt(end - 1) === 0x0a || raw.charCodeAt(end - 1) === 0x0d)) end--;
  const text = raw.slice(0, end);
  // Only CRLF line ends: a bare CR or LF is read differently by different parsers.
  if (/\r(?!\n)|(?<!\r)\n/.test(text)) return undefined;
  const physical = text.split('\r\n');
  if (physical.length === 0 || MBOX_OR_HTTP.test(physical[0]!) || FOLD.test(physical[0]!)) return undefined;
  const fields: Array<{ key: string; line: string }> = [];
  for (const line of physical) {
    // A blank or whitespace-only line inside the block would end the header for a parser.
    if (line.trim() === '') return undefined;
    if (FOLD.test(line)) {
      fields[fields.length - 1]!.line += `\r\n${line}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) return undefined;
    fields.push({ key: line.slice(0, colon).toLowerCase().trim(), line });
  }

  const facts: HeaderFacts = {};
  let messageId: string | undefined;
  let date: Date | undefined;
  let from: string | undefined;
  const tlsRequired: string[] = [];
  for (const field of fields) {
    switch (field.key) {
      case 'message-id': {
        if (messageId !== undefined) break;
        const value = decodedValue(field.line);
        // An encoded word (RFC 2047) or a NUL byte: mailparser's word decoding would apply.
        if (value.includes('=?') || value.includes('\0')) return undefined;
        if (value.length > 0) messageId = `${value.startsWith('<') ? '' : '<'}${value}${value.endsWith('>') ? '' : '>'}`;
        break;
      }
      case 'date': {
        if (date !== undefined) break;
        const parsed = new Date(decodedValue(field.line));
        date = Number.isNaN(parsed.getTime()) ? new Date() : parsed;
        break;
      }
      case 'from':
        from ??= valueAsSent(field.line);
        break;
      case 'tls-required': {
        const value = decodedValue(field.line);
        if (value) tlsRequired.push(value);
        break;
      }
    }
  }
  if (messageId !== undefined) facts.messageId = messageId;
  if (from) facts.from = from;
  if (date !== undefined) facts.date = date.toISOString();
  if (tlsRequired.length === 1) facts.tlsRequired = tlsRequired[0]!.trim();
  return facts;
}

/** A field's value unfolded and trimmed, its bytes read as UTF-8 (libmime's decodeHeader, then mailparser's recoding). */
function decodedValue(line: string): string {
  const unfolded = line.replace(/(?:\r?\n|\r)[ \t]*/g, ' ').trim();
  const match = /^\s*([^:]+):(.*)$/.exec(unfolded);
  const value = (match?.[2] ?? '').trim();
  return Buffer.from(value, 'latin1').toString();
}

/** The facts as mailparser reads them, for the blocks the plain reader leaves to it (and the reference it is tested against). */
export async function parsedHeaderFacts(headerBlock: Buffer): Promise<HeaderFacts> {
  // Loaded on demand: mailparser and its HTML libraries cost ~19 MB of RSS, and plain blocks never need it.
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a lazy require keeps mailparser unloaded until a block needs it
  const { simpleParser } = require('mailparser') as typeof import('mailparser');
  // An empty body after the header block keeps mailparser from reading anything else.
  const parsed = await simpleParser(Buffer.concat([headerBlock, Buffer.from('\r\n')]), {
    skipHtmlToText: true,
    skipTextToHtml: true,
    skipTextLinks: true,
    skipImageLinks: true,
  });
  const facts: HeaderFacts = {};
  if (parsed.messageId) facts.messageId = parsed.messageId;
  const from = rawValue(parsed.headerLines, 'from') ?? parsed.from?.text;
  if (from) facts.from = from;
  const date = parsed.headers.get('date');
  if (date instanceof Date && !Number.isNaN(date.getTime())) facts.date = date.toISOString();
  const tlsRequired = parsed.headers.get('tls-required');
  if (typeof tlsRequired === 'string') facts.tlsRequired = tlsRequired.trim();
  return facts;
}

/** The header's value as sent (unfolded), so stored facts match what the client wrote. */
function rawValue(headerLines: ReadonlyArray<{ key: string; line: string }>, key: string): string | undefined {
  const entry = headerLines.find((h) => h.key === key);
  return entry ? valueAsSent(entry.line) : undefined;
}

/** A whole header line's value: after the first colon, folds joined by one space, trimmed. */
function valueAsSent(line: string): string {
  return line
    .slice(line.indexOf(':') + 1)
    .replace(/\r?\n[ \t]+/g, ' ')
    .trim();
}
