import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Redis } from 'ioredis';
import { EnqueueAbortedError, NotFoundError } from '../types';

/** Large values (message bodies, portal ciphertext) travel in pieces of this size both ways: never held whole. */
export const BLOB_PIECE = 256 * 1024;
/** An upload whose writer died disappears after this long. */
const UPLOAD_TTL_MS = 3_600_000;

/**
 * Streams `source` into the Redis string `key` piece by piece (APPEND, with a TTL so an abandoned upload goes
 * away) and returns its size and SHA-256 (hex). An error of the source stream becomes EnqueueAbortedError naming `what`.
 */
export async function uploadBlob(redis: Redis, key: string, source: Readable, what: string): Promise<{ size: number; sha256: string }> {
  const { size, sha256, rest } = await uploadBlobHead(redis, key, source, what);
  if (rest.length > 0) await appendPiece(redis, key, rest);
  return { size, sha256 };
}

/** The APPEND of one piece and the upload's TTL, in one round trip. */
export async function appendPiece(redis: Redis, key: string, data: Buffer): Promise<void> {
  const replies = await uploadPiece(redis.pipeline(), key, data).exec();
  const failed = replies?.find(([error]) => error)?.[0];
  if (failed) throw failed;
}

/** Queues the APPEND of one piece and the upload's TTL on `pipeline` (the caller runs it). */
export function uploadPiece<P extends { append(key: string, data: Buffer): P; pexpire(key: string, ms: number): P }>(pipeline: P, key: string, data: Buffer): P {
  return pipeline.append(key, data).pexpire(key, UPLOAD_TTL_MS);
}

/**
 * uploadBlob but for its last piece (up to BLOB_PIECE bytes, empty when there is none), which is returned instead
 * of sent: the caller sends it together with what commits the upload, one round trip for a small value.
 */
export async function uploadBlobHead(redis: Redis, key: string, source: Readable, what: string): Promise<{ size: number; sha256: string; rest: Buffer }> {
  let size = 0;
  const hash = createHash('sha256');
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const flush = async () => {
    if (pendingBytes === 0) return;
    const data = Buffer.concat(pending, pendingBytes);
    pending = [];
    pendingBytes = 0;
    await appendPiece(redis, key, data);
  };
  const chunks = source[Symbol.asyncIterator]();
  for (;;) {
    let next: IteratorResult<unknown>;
    try {
      next = await chunks.next();
    } catch (error) {
      throw new EnqueueAbortedError(`${what} not stored: ${(error as Error).message}`, { cause: error });
    }
    if (next.done) break;
    const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value as string);
    pending.push(chunk);
    hash.update(chunk);
    pendingBytes += chunk.length;
    size += chunk.length;
    if (pendingBytes >= BLOB_PIECE) await flush();
  }
  return { size, sha256: hash.digest('hex'), rest: Buffer.concat(pending, pendingBytes) };
}

/**
 * Reads `size` bytes of the Redis string `key` as a stream of pieces; fails naming `what` if it vanishes meanwhile.
 * A read error goes through `classify` (the core's: a lost connection becomes StoreUnavailableError). `firstPiece`,
 * when given, is GETRANGE 0 to BLOB_PIECE - 1 read by the caller together with its other reads: used instead of a
 * first GETRANGE of its own.
 */
export function readBlob(redis: Redis, key: string, size: number, what: string, classify: (error: unknown) => unknown, firstPiece?: Buffer): Readable {
  async function* pieces(): AsyncGenerator<Buffer> {
    for (let offset = 0; offset < size; offset += BLOB_PIECE) {
      let piece: Buffer;
      if (offset === 0 && firstPiece !== undefined) {
        // Read already, in the caller's round trip (bytes 0 to BLOB_PIECE - 1): cut to what was asked for.
        piece = firstPiece.length > size ? firstPiece.subarray(0, size) : firstPiece;
      } else {
        try {
          piece = await redis.getrangeBuffer(key, offset, Math.min(offset + BLOB_PIECE, size) - 1);
        } catch (error) {
          throw classify(error);
        }
      }
      if (piece.length === 0) throw new NotFoundError(`${what} disappeared while being read`);
      yield piece;
    }
  }
  return Readable.from(pieces(), { objectMode: false });
}
