import { simpleParser } from 'mailparser';
import type { HeaderFacts } from '../store/types';

/**
 * Extracts the header facts kept as metadata (never logged) from the header block only: the
 * body never reaches mailparser, so a 50 MB message costs no more than its headers.
 */
export async function extractHeaderFacts(headerBlock: Buffer): Promise<HeaderFacts> {
  if (headerBlock.length === 0) return {};
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
  if (!entry) return undefined;
  const colon = entry.line.indexOf(':');
  return entry.line
    .slice(colon + 1)
    .replace(/\r?\n[ \t]+/g, ' ')
    .trim();
}
