import type { Readable } from 'node:stream';

const MAX_HEADER_BYTES = 256 * 1024;

/**
 * The Subject and Date of a stored message, decoded by mailparser (RFC 2047 encoded words and all) from the
 * header block alone: the body is never read past the first empty line (at most 256 KiB of headers), and the
 * stream is destroyed once the headers are in. The values are sealed into the portal copy; they are never logged.
 */
export async function readHeaderBlock(body: Readable): Promise<{ subject?: string; date?: string }> {
  const chunks: Buffer[] = [];
  let size = 0;
  let end = -1;
  try {
    for await (const chunk of body) {
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
      chunks.push(buf);
      size += buf.length;
      // latin1 keeps one character per byte, so the match index is a byte offset.
      end = Buffer.concat(chunks)
        .toString('latin1')
        .search(/\r?\n\r?\n/);
      if (end !== -1 || size >= MAX_HEADER_BYTES) break;
    }
  } finally {
    body.destroy();
  }
  const all = Buffer.concat(chunks);
  const block = end === -1 ? all.subarray(0, MAX_HEADER_BYTES) : all.subarray(0, end);
  // Loaded on demand: mailparser (~15 MB of RSS) is needed only when a diverted message is handed to the portal.
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a lazy require keeps mailparser unloaded until a hand-over
  const { simpleParser } = require('mailparser') as typeof import('mailparser');
  // An empty body after the header block keeps mailparser from reading anything else.
  const parsed = await simpleParser(Buffer.concat([block, Buffer.from('\r\n\r\n')]), { skipHtmlToText: true, skipTextToHtml: true, skipTextLinks: true, skipImageLinks: true });
  const out: { subject?: string; date?: string } = {};
  if (parsed.subject !== undefined) out.subject = parsed.subject;
  const date = parsed.headers.get('date');
  if (date instanceof Date && !Number.isNaN(date.getTime())) out.date = date.toISOString();
  return out;
}
