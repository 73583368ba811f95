import { Transform, type TransformCallback } from 'node:stream';

/**
 * Checks a DATA stream byte by byte as it passes to the store, without buffering the message:
 * size, bare CR / bare LF (SMTP smuggling, CVE-2023-51764 family), NUL bytes (a next hop that drops
 * them would read `CRLF NUL . CRLF` as end of data), line length, header size, and the number of
 * Received: fields in the header (a mail loop).
 * On the first violation the stream errors with a GuardError, so the store keeps nothing.
 * It also keeps a copy of the header block (bounded by maxHeaderSize) for mailparser and emits
 * 'header' once that block is complete, before anything downstream has to read: its readable side
 * holds up to maxHeaderSize plus one chunk, so the header can be parsed before the store is called.
 */

export type GuardProblem = 'too-big' | 'bare-newline' | 'nul-byte' | 'line-too-long' | 'header-too-big' | 'too-many-hops';

export class GuardError extends Error {
  override name = 'GuardError';
  constructor(
    readonly problem: GuardProblem,
    message: string,
  ) {
    super(message);
  }
}

export interface GuardLimits {
  maxMessageSize: number;
  maxLineLength: number;
  maxHeaderSize: number;
  /** More Received: fields than this in the header is a loop. */
  maxReceivedHeaders: number;
}

const CR = 0x0d;
const LF = 0x0a;
const NUL = 0x00;
const COLON = 0x3a;
/** Enough of a header line to tell its field name; longer names are not Received. */
const FIELD_NAME_PREFIX = 16;

const NUL_ERROR = (): GuardError => new GuardError('nul-byte', 'Message contains a NUL byte');
const BARE_CR_ERROR = (): GuardError => new GuardError('bare-newline', 'Message contains a bare CR');
const BARE_LF_ERROR = (): GuardError => new GuardError('bare-newline', 'Message contains a bare LF');

export class MessageGuard extends Transform {
  /** Client bytes seen so far (the prefix is not counted). */
  bytes = 0;
  private lineLength = 0;
  private previousWasCr = false;
  /** True until the empty line that ends the header section has been seen. */
  private inHeader = true;
  private readonly headerChunks: Buffer[] = [];
  private headerBytes = 0;
  private failed: GuardError | undefined;
  private headerDone = false;
  /** The start of the current header line, lower-cased, until its colon (undefined once the name is known). */
  private fieldName: string | undefined = '';
  /** Received: fields seen in the header so far. */
  receivedHeaders = 0;

  constructor(
    private readonly limits: GuardLimits,
    prefix?: Buffer,
  ) {
    super({ readableHighWaterMark: limits.maxHeaderSize + (prefix?.length ?? 0) + 128 * 1024 });
    if (prefix && prefix.length > 0) this.push(prefix);
  }

  get problem(): GuardError | undefined {
    return this.failed;
  }

  /** Resolves with the header block once it is complete (or the message ended); rejects if the guard fails first. */
  headerReady(): Promise<Buffer> {
    if (this.headerDone) return Promise.resolve(this.headerBlock());
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      const onHeader = (): void => {
        this.off('error', onError);
        resolve(this.headerBlock());
      };
      const onError = (err: Error): void => {
        this.off('header', onHeader);
        reject(err);
      };
      this.once('header', onHeader);
      this.once('error', onError);
    });
  }

  /** The header section as received (up to and including the blank line), for header-fact extraction. */
  headerBlock(): Buffer {
    return Buffer.concat(this.headerChunks, this.headerBytes);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const problem = this.inspect(chunk);
    if (problem) {
      this.failed = problem;
      callback(problem);
      return;
    }
    callback(null, chunk);
    if (!this.inHeader) this.markHeaderDone();
  }

  override _flush(callback: TransformCallback): void {
    // A message that ends in a lone CR has a bare CR.
    if (this.previousWasCr) {
      this.failed = new GuardError('bare-newline', 'Message contains a bare CR');
      callback(this.failed);
      return;
    }
    this.markHeaderDone();
    callback();
  }

  private markHeaderDone(): void {
    if (this.headerDone) return;
    this.headerDone = true;
    this.emit('header', this.headerBlock());
  }

  /** Follows a header line's field name byte by byte (chunks may split it anywhere) and counts Received: fields. */
  private readFieldName(byte: number): GuardError | undefined {
    if (byte !== COLON) {
      this.fieldName = this.fieldName!.length < FIELD_NAME_PREFIX ? this.fieldName + String.fromCharCode(byte).toLowerCase() : undefined;
      return undefined;
    }
    // RFC 5322 obsolete syntax allows blanks before the colon; a continuation line starts with one and is no field.
    const name = this.fieldName!.trimEnd();
    this.fieldName = undefined;
    if (name !== 'received') return undefined;
    this.receivedHeaders++;
    if (this.receivedHeaders > this.limits.maxReceivedHeaders) {
      return new GuardError('too-many-hops', `Too many hops (more than ${this.limits.maxReceivedHeaders} Received header fields)`);
    }
    return undefined;
  }

  private inspect(chunk: Buffer): GuardError | undefined {
    this.bytes += chunk.length;
    if (this.bytes > this.limits.maxMessageSize) {
      return new GuardError('too-big', `Message exceeds the maximum size of ${this.limits.maxMessageSize} bytes`);
    }
    let headerEnd = -1;
    let i = 0;
    // The header byte by byte (field names are followed across chunks); the body, nearly all of a message, by
    // native scans for CR, LF and NUL (scanBody), with the same checks and the same first error.
    for (; this.inHeader && i < chunk.length; i++) {
      const byte = chunk[i]!;
      if (byte === NUL) return NUL_ERROR();
      if (this.previousWasCr) {
        if (byte !== LF) return BARE_CR_ERROR();
        this.previousWasCr = false;
        // End of a line: a zero-length line ends the header section.
        if (this.lineLength === 0) {
          this.inHeader = false;
          headerEnd = i + 1;
        }
        this.lineLength = 0;
        this.fieldName = '';
        continue;
      }
      if (byte === CR) {
        this.previousWasCr = true;
        continue;
      }
      if (byte === LF) return BARE_LF_ERROR();
      this.lineLength++;
      if (this.fieldName !== undefined) {
        const loop = this.readFieldName(byte);
        if (loop) return loop;
      }
      if (this.lineLength > this.limits.maxLineLength) return this.lineTooLong();
    }
    if (!this.inHeader) {
      const problem = this.scanBody(chunk, i);
      if (problem) return problem;
    }
    if (this.inHeader || headerEnd >= 0) {
      const part = headerEnd >= 0 ? chunk.subarray(0, headerEnd) : chunk;
      this.headerBytes += part.length;
      if (this.headerBytes > this.limits.maxHeaderSize) {
        return new GuardError('header-too-big', `Message header exceeds ${this.limits.maxHeaderSize} bytes`);
      }
      this.headerChunks.push(Buffer.from(part));
    }
    return undefined;
  }

  /**
   * The body part of a chunk from `from` on: the first NUL, bare CR, bare LF or over-long line, in byte order
   * (the same error the byte loop of the header would give), found with Buffer.indexOf instead of a JavaScript
   * loop over every byte.
   */
  private scanBody(chunk: Buffer, from: number): GuardError | undefined {
    const length = chunk.length;
    const max = this.limits.maxLineLength;
    const nul = chunk.indexOf(NUL, from);
    let i = from;
    while (i < length) {
      if (this.previousWasCr) {
        const byte = chunk[i]!;
        if (byte === NUL) return NUL_ERROR();
        if (byte !== LF) return BARE_CR_ERROR();
        this.previousWasCr = false;
        this.lineLength = 0;
        i++;
        continue;
      }
      const cr = chunk.indexOf(CR, i);
      const end = cr < 0 ? length : cr;
      const lf = chunk.indexOf(LF, i);
      const nulAt = nul >= i && nul < end ? nul : Infinity;
      const lfAt = lf >= 0 && lf < end ? lf : Infinity;
      const tooLongAt = this.lineLength + (end - i) > max ? i + max - this.lineLength : Infinity;
      const first = Math.min(nulAt, lfAt, tooLongAt);
      if (first !== Infinity) {
        if (first === nulAt) return NUL_ERROR();
        if (first === lfAt) return BARE_LF_ERROR();
        return this.lineTooLong();
      }
      this.lineLength += end - i;
      if (cr < 0) return undefined;
      this.previousWasCr = true;
      i = cr + 1;
    }
    return undefined;
  }

  private lineTooLong(): GuardError {
    return new GuardError('line-too-long', `Message has a line longer than ${this.limits.maxLineLength} bytes`);
  }
}
