import { createHash, type Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { Transform, type Readable, type TransformCallback } from 'node:stream';

/** What a stored body must match, and what to do when it does not (set it aside; returns the error to fail with). */
export type BodyExpectation = { size: number; sha256?: string | undefined };
export type OnBodyMismatch = (reason: string, code: 'body-size' | 'body-checksum') => Promise<Error>;

/** Counts and hashes bytes as they pass (enqueue): the size and SHA-256 kept with the message. */
export class BodyDigest extends Transform {
  private readonly hash: Hash = createHash('sha256');
  bytes = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    done(null, chunk);
  }

  /** The hex digest; call once, after the stream ended. */
  digest(): string {
    return this.hash.digest('hex');
  }
}

/**
 * Passes a stored body through while checking it against the size and SHA-256 kept at enqueue, without
 * holding it: the check happens as the last byte goes by, and a mismatch fails the stream instead of ending
 * it. A consumer that only ends its output when this stream ends (an SMTP DATA phase sends "." on end)
 * therefore never completes a damaged body. `onMismatch` runs first (to set the entry aside); then the
 * stream errors with what it returned.
 */
export class BodyVerifier extends Transform {
  private readonly hash: Hash | undefined;
  private bytes = 0;

  constructor(
    private readonly expected: BodyExpectation,
    private readonly onMismatch: OnBodyMismatch,
  ) {
    super();
    this.hash = expected.sha256 !== undefined ? createHash('sha256') : undefined;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.expected.size) {
      this.fail(`body is longer than the ${this.expected.size} bytes stored at enqueue`, 'body-size', done);
      return;
    }
    this.hash?.update(chunk);
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    if (this.bytes !== this.expected.size) {
      this.fail(`body has ${this.bytes} of the ${this.expected.size} bytes stored at enqueue`, 'body-size', done);
      return;
    }
    if (this.hash && this.hash.digest('hex') !== this.expected.sha256) {
      this.fail('body does not match the SHA-256 stored at enqueue', 'body-checksum', done);
      return;
    }
    done();
  }

  private fail(reason: string, code: 'body-size' | 'body-checksum', done: TransformCallback): void {
    this.onMismatch(reason, code).then(
      (error) => done(error),
      (error: Error) => done(error),
    );
  }
}

/** `source` through a BodyVerifier: a body that does not match fails the stream at its end, never ends it. */
export function verifiedBody(source: Readable, expected: BodyExpectation, onMismatch: OnBodyMismatch): Readable {
  const verifier = new BodyVerifier(expected, onMismatch);
  source.on('error', (error) => verifier.destroy(error));
  verifier.on('close', () => source.destroy());
  return source.pipe(verifier);
}

/**
 * A stored body file, opened: refused at once when its size is not the one stored at enqueue, otherwise streamed
 * through a BodyVerifier (a changed byte fails the stream before it ends, with no second read). The handle is
 * closed on every path.
 */
export async function verifiedBodyFile(handle: FileHandle, expected: BodyExpectation, onMismatch: OnBodyMismatch, highWaterMark?: number): Promise<Readable> {
  let size: number;
  try {
    size = (await handle.stat()).size;
  } catch (error) {
    await handle.close().catch(() => undefined);
    throw error;
  }
  if (size !== expected.size) {
    await handle.close().catch(() => undefined);
    throw await onMismatch(`body has ${size} of the ${expected.size} bytes stored at enqueue`, 'body-size');
  }
  return verifiedBody(handle.createReadStream(highWaterMark !== undefined ? { highWaterMark } : {}), expected, onMismatch);
}
