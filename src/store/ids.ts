import { NotFoundError } from './errors';
import { createHash, randomFillSync } from 'node:crypto';

// Crockford base32: sortable as text in the same order as the numbers, and safe in file names and SMTP replies.
const BASE32 = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

function encodeTime(ms: number): string {
  let out = '';
  let rest = ms;
  for (let i = 0; i < 10; i++) {
    out = BASE32[rest % 32]! + out;
    rest = Math.floor(rest / 32);
  }
  return out;
}

const RANDOM_CHARS = 12;
/** Random bytes drawn 256 ids at a time: one call into the CSPRNG per 256 ids instead of one per id. */
const randomPool = Buffer.alloc(RANDOM_CHARS * 256);
let randomOffset = randomPool.length;

/** A ULID-style id: 10 characters of millisecond time then 12 random ones, so ids sort by arrival time. */
export function newMessageId(now = Date.now()): string {
  if (randomOffset + RANDOM_CHARS > randomPool.length) {
    randomFillSync(randomPool);
    randomOffset = 0;
  }
  let suffix = '';
  for (let i = randomOffset; i < randomOffset + RANDOM_CHARS; i++) suffix += BASE32[randomPool[i]! % 32]!;
  // Each byte is used once: the next id takes the next ones.
  randomOffset += RANDOM_CHARS;
  return encodeTime(now) + suffix;
}

/** When a message id was made (epoch ms, its first 10 characters); undefined when the text is not a message id. */
export function arrivalOf(messageId: string): number | undefined {
  if (!isMessageId(messageId)) return undefined;
  let ms = 0;
  for (const char of messageId.slice(0, 10)) ms = ms * 32 + BASE32.indexOf(char);
  return ms;
}

export function isMessageId(value: string): boolean {
  return /^[0-9A-HJKMNP-TV-Z]{22}$/.test(value);
}

export function jobIdOf(messageId: string, domain: string): string {
  return `${messageId}/${domain}`;
}

/** Splits `<messageId>/<domain>`; undefined when the text is not a job id. */
export function parseJobId(jobId: string): { messageId: string; domain: string } | undefined {
  const slash = jobId.indexOf('/');
  if (slash <= 0 || slash === jobId.length - 1) return undefined;
  return { messageId: jobId.slice(0, slash), domain: jobId.slice(slash + 1) };
}

/**
 * A fallback item's id is derived from what it records, so replaying the same attempt after a crash
 * (before the job's new state was saved) rewrites the same item instead of adding a duplicate.
 */
export function fallbackIdOf(messageId: string, domain: string, recipient: string, attempt: number): string {
  const digest = createHash('sha256').update(`${domain}\0${recipient}\0${attempt}`).digest('hex').slice(0, 16);
  return `${messageId}.${digest}`;
}

export function messageIdOfFallback(fallbackId: string): string {
  return fallbackId.split('.')[0] ?? '';
}

/** Lower-cased part after the last @ (the null sender and bare names have no domain). */
export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return (at < 0 ? address : address.slice(at + 1)).toLowerCase();
}

/** The parts of a job id that names a real message; NotFoundError otherwise (no such job can exist). */
export function jobOf(jobId: string): { messageId: string; domain: string } {
  const parsed = parseJobId(jobId);
  if (!parsed || !isMessageId(parsed.messageId)) throw new NotFoundError(`job ${jobId} not found`);
  return parsed;
}

/** A fallback item id as fallbackIdOf builds them: the message id, a dot, 16 hex digits. */
export function isFallbackId(id: string): boolean {
  return /^[0-9A-Z]{22}\.[0-9a-f]{16}$/.test(id);
}
