import type { Readable } from 'node:stream';

const MAX_HEADER_BYTES = 256 * 1024;

/**
 * Reads a message's header block (up to the first empty line, at most 256 KiB) and returns the unfolded
 * Subject and Date. The stream is destroyed once the headers are read. The values are sealed into the portal
 * copy; they are never logged.
 */
export async function readHeaderBlock(body: Readable): Promise<{ subject?: string; date?: string }> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
      chunks.push(buf);
      size += buf.length;
      const text = Buffer.concat(chunks).toString('latin1');
      if (/\r?\n\r?\n/.test(text) || size >= MAX_HEADER_BYTES) break;
    }
  } finally {
    body.destroy();
  }
  const text = Buffer.concat(chunks).toString('utf8');
  const end = text.search(/\r?\n\r?\n/);
  const block = (end === -1 ? text : text.slice(0, end)).replace(/\r?\n[ \t]+/g, ' ');
  const out: { subject?: string; date?: string } = {};
  for (const line of block.split(/\r?\n/)) {
    const m = /^(subject|date):[ \t]*(.*)$/i.exec(line);
    if (!m) continue;
    const name = m[1]!.toLowerCase() as 'subject' | 'date';
    if (out[name] === undefined) out[name] = m[2]!.trim();
  }
  return out;
}
