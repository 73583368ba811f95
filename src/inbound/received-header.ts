/**
 * The trace header Sealgate prepends to every message it accepts (RFC 5321 4.4: a relay MUST add
 * one). It names the client's HELO and IP, this relay, the protocol and the TLS session, and
 * deliberately not the recipient (a Bcc would leak) nor the authenticated user name.
 */
export interface ReceivedFacts {
  helo?: string | undefined;
  ip: string;
  hostname: string;
  /** ESMTP, ESMTPS, ESMTPSA, ... (RFC 3848). */
  protocol: string;
  tls?: { protocol: string; cipher: string } | undefined;
  at: Date;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** RFC 5322 date-time in UTC, e.g. `Fri, 27 Nov 2026 19:27:34 +0000`. */
export function rfc5322Date(at: Date): string {
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${DAYS[at.getUTCDay()]}, ${at.getUTCDate()} ${MONTHS[at.getUTCMonth()]} ${at.getUTCFullYear()} ${pad(at.getUTCHours())}:${pad(at.getUTCMinutes())}:${pad(at.getUTCSeconds())} +0000`;
}

/** Keeps only characters that cannot break the header: client-supplied HELO names end up here. */
function safeToken(value: string): string {
  return value.replace(/[^A-Za-z0-9.\-_:[\]]/g, '?').slice(0, 255);
}

export function buildReceivedHeader(facts: ReceivedFacts): Buffer {
  const helo = facts.helo ? safeToken(facts.helo) : 'unknown';
  const ip = safeToken(facts.ip);
  const lines = [`Received: from ${helo} ([${ip}])`, `\tby ${safeToken(facts.hostname)} (Sealgate) with ${safeToken(facts.protocol)}`];
  if (facts.tls) lines.push(`\t(using ${safeToken(facts.tls.protocol)} with cipher ${safeToken(facts.tls.cipher)})`);
  lines[lines.length - 1] += ';';
  lines.push(`\t${rfc5322Date(facts.at)}`);
  return Buffer.from(`${lines.join('\r\n')}\r\n`, 'ascii');
}

/**
 * Splits the Received header Sealgate prepended from the bytes the client sent (for byte-identity
 * checks and anything that needs the message exactly as submitted). Undefined when the body does
 * not start with a Received header.
 */
export function splitReceivedHeader(body: Buffer): { received: string; submitted: Buffer } | undefined {
  const head = body.subarray(0, 4096).toString('latin1');
  const match = /^Received: [^\r\n]*\r\n(?:\t[^\r\n]*\r\n)*/.exec(head);
  if (!match) return undefined;
  return { received: match[0], submitted: body.subarray(match[0].length) };
}
