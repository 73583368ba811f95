import { Transform, type TransformCallback } from 'node:stream';
import { hashPassword } from '../auth/users';
import { parseDuration } from '../config/units';
import type { Logger } from '../log/logger';
import type { NewMessage, PortalAuthMethod } from '../store/model';

/**
 * Per-message portal choices: a submitter may add `X-Sealgate-Portal-*` header fields (notify, expiry,
 * methods, secret). Every such field is removed from the header block, folded continuation lines included,
 * before the message reaches the store, whether or not the portal is enabled; the body is never touched.
 * The filter holds back only the header block (the MessageGuard in front of it bounds that by
 * maxHeaderSize) and passes the body through unbuffered. Header values are never logged.
 */

export const PORTAL_HEADER_PREFIX = 'x-sealgate-portal-';

const DAY = 24 * 60 * 60 * 1000;
const MIN_EXPIRY = DAY;
const MAX_EXPIRY = 365 * DAY;
const KNOWN_METHODS: readonly PortalAuthMethod[] = ['email-otp', 'secret'];
const CRLF_CRLF = Buffer.from('\r\n\r\n');

/** One removed header field: its name as sent and its unfolded, trimmed value. */
export interface PortalHeaderField {
  name: string;
  value: string;
}

/** What the headers asked for; `secret` is the plaintext passphrase, held in memory only until it is hashed. */
export interface PortalChoices {
  notify?: boolean;
  expiry?: number;
  methods?: PortalAuthMethod[];
  secret?: string;
}

export class PortalHeaderFilter extends Transform {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private inHeader = true;
  private removed: PortalHeaderField[] = [];
  private block: Buffer | undefined;

  constructor(options: { readableHighWaterMark?: number } = {}) {
    super(options.readableHighWaterMark !== undefined ? { readableHighWaterMark: options.readableHighWaterMark } : {});
  }

  /** The header fields removed so far (all of them once 'header' has been emitted). */
  get fields(): readonly PortalHeaderField[] {
    return this.removed;
  }

  /** The header block as the store gets it (the portal fields removed), once complete. */
  headerBlock(): Buffer {
    return this.block ?? Buffer.alloc(0);
  }

  /** Resolves with the stripped header block once it is complete (or the message ended); rejects if the stream fails first. */
  headerReady(): Promise<Buffer> {
    if (this.block) return Promise.resolve(this.block);
    if (this.destroyed) return Promise.reject(this.errored ?? new Error('the message stream ended early'));
    return new Promise((resolve, reject) => {
      const onHeader = (block: Buffer): void => {
        this.off('error', onError);
        this.off('close', onClose);
        resolve(block);
      };
      const onError = (err: Error): void => {
        this.off('header', onHeader);
        this.off('close', onClose);
        reject(err);
      };
      const onClose = (): void => {
        this.off('header', onHeader);
        this.off('error', onError);
        reject(this.errored ?? new Error('the message stream ended early'));
      };
      this.once('header', onHeader);
      this.once('error', onError);
      this.once('close', onClose);
    });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (!this.inHeader) {
      callback(null, chunk);
      return;
    }
    // Look for the blank line only from where the previous search stopped (3 bytes back for a split CRLFCRLF).
    const searchFrom = Math.max(0, this.pendingBytes - 3);
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    const held = this.pending.length === 1 ? chunk : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [held];
    const end = headerEnd(held, searchFrom);
    if (end < 0) {
      callback();
      return;
    }
    this.finishHeader(held.subarray(0, end));
    if (end < held.length) this.push(held.subarray(end));
    callback();
  }

  override _flush(callback: TransformCallback): void {
    // A message without a blank line is all header.
    if (this.inHeader) this.finishHeader(this.pendingBytes > 0 ? Buffer.concat(this.pending, this.pendingBytes) : Buffer.alloc(0));
    callback();
  }

  private finishHeader(header: Buffer): void {
    this.inHeader = false;
    this.pending = [];
    this.pendingBytes = 0;
    const { kept, removed } = stripPortalFields(header);
    this.removed = removed;
    this.block = kept;
    if (kept.length > 0) this.push(kept);
    this.emit('header', kept);
  }
}

/** Index just past the blank line that ends the header block, or -1 when it has not arrived yet. */
function headerEnd(buffer: Buffer, searchFrom: number): number {
  if (buffer.length >= 2 && buffer[0] === 0x0d && buffer[1] === 0x0a) return 2; // no header fields at all
  const at = buffer.indexOf(CRLF_CRLF, searchFrom);
  return at < 0 ? -1 : at + 4;
}

/** Splits a complete header block (CRLF lines) into what is kept and the removed X-Sealgate-Portal-* fields. */
export function stripPortalFields(header: Buffer): { kept: Buffer; removed: PortalHeaderField[] } {
  const kept: Buffer[] = [];
  const removed: PortalHeaderField[] = [];
  let current: { name: string; lines: Buffer[] } | undefined;
  const close = (): void => {
    if (!current) return;
    const raw = Buffer.concat(current.lines).toString('utf8');
    const value = raw
      .slice(raw.indexOf(':') + 1)
      .replace(/\r\n(?=[ \t])/g, '')
      .replace(/\r\n$/, '')
      .trim();
    removed.push({ name: current.name, value });
    current = undefined;
  };
  let start = 0;
  while (start < header.length) {
    const lf = header.indexOf(0x0a, start);
    const stop = lf < 0 ? header.length : lf + 1;
    const line = header.subarray(start, stop);
    start = stop;
    const first = line[0];
    if (first === 0x20 || first === 0x09) {
      // A folded continuation belongs to the field before it.
      if (current) current.lines.push(line);
      else kept.push(line);
      continue;
    }
    close();
    const colon = line.indexOf(0x3a);
    const name = colon > 0 ? line.subarray(0, colon).toString('latin1').trim() : '';
    if (name.toLowerCase().startsWith(PORTAL_HEADER_PREFIX)) current = { name, lines: [line] };
    else kept.push(line);
  }
  close();
  return { kept: Buffer.concat(kept), removed };
}

/** Turns the removed fields into choices; unknown or invalid ones are dropped with a log line naming the header, never its value. */
export function parsePortalChoices(fields: readonly PortalHeaderField[], log: Pick<Logger, 'warn'>): PortalChoices {
  const choices: PortalChoices = {};
  const ignore = (name: string, why: string): void => log.warn({ event: 'portal-header-ignored', header: name, why }, 'a per-message portal header was ignored');
  for (const { name, value } of fields) {
    switch (name.toLowerCase()) {
      case 'x-sealgate-portal-notify': {
        const answer = value.toLowerCase();
        if (answer === 'yes' || answer === 'no') choices.notify = answer === 'yes';
        else ignore(name, 'not yes or no');
        break;
      }
      case 'x-sealgate-portal-expiry': {
        const expiry = parseDuration(value);
        if (expiry !== undefined && expiry >= MIN_EXPIRY && expiry <= MAX_EXPIRY) choices.expiry = expiry;
        else ignore(name, 'not a duration from 1d to 365d');
        break;
      }
      case 'x-sealgate-portal-methods': {
        const methods = [
          ...new Set(
            value
              .split(/[\s,]+/)
              .map((m) => m.toLowerCase())
              .filter((m): m is PortalAuthMethod => (KNOWN_METHODS as readonly string[]).includes(m)),
          ),
        ];
        if (methods.length > 0) choices.methods = methods;
        else ignore(name, 'no known method');
        break;
      }
      case 'x-sealgate-portal-secret':
        if (value.length > 0) choices.secret = value;
        else ignore(name, 'empty');
        break;
      default:
        ignore(name, 'unknown portal header');
    }
  }
  return choices;
}

/** The choices as the store keeps them: the secret only as a slow hash (scrypt, self-describing). */
export async function storedPortalChoices(choices: PortalChoices): Promise<NonNullable<NewMessage['params']['portal']> | undefined> {
  const stored: NonNullable<NewMessage['params']['portal']> = {};
  if (choices.notify !== undefined) stored.notify = choices.notify;
  if (choices.expiry !== undefined) stored.expiry = choices.expiry;
  if (choices.methods !== undefined) stored.methods = [...choices.methods];
  if (choices.secret !== undefined) stored.secretHash = await hashPassword(choices.secret);
  return Object.keys(stored).length > 0 ? stored : undefined;
}
