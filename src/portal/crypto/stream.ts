import { Transform, type TransformCallback } from 'node:stream';
import { aeadDecrypt, aeadEncrypt, IV_BYTES, TAG_BYTES } from './aead';
import { PortalKeyError } from './errors';

/** Plaintext bytes per chunk: reading and downloading stream one chunk at a time. */
export const CHUNK_SIZE = 64 * 1024;
/** What each chunk adds to its plaintext: its own IV and GCM tag. */
export const CHUNK_OVERHEAD = IV_BYTES + TAG_BYTES;

/*
 * Format: a sequence of records `iv | ciphertext | tag`, each chunkSize bytes of plaintext except the last,
 * which holds 0..chunkSize bytes and is always present (an empty message is one empty final record).
 * Each record's associated data is `itemId|chunk number|final flag`, so a record moved to another place,
 * another item, a dropped or appended record, or a stream cut at a record boundary fails authentication.
 */
function chunkAad(itemId: string, index: number, final: boolean): Buffer {
  return Buffer.from(`${itemId}|${index}|${final ? 1 : 0}`, 'utf8');
}

/** Collects written pieces and hands out fixed-size blocks without re-copying everything on each write. */
class BlockBuffer {
  private parts: Buffer[] = [];
  length = 0;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.parts.push(chunk);
    this.length += chunk.length;
  }

  /** Removes and returns the first `size` bytes (size <= length). */
  take(size: number): Buffer {
    const all = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.length);
    const head = all.subarray(0, size);
    const rest = all.subarray(size);
    this.parts = rest.length > 0 ? [rest] : [];
    this.length = rest.length;
    return head;
  }
}

function toBuffer(chunk: unknown, encoding: BufferEncoding): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string, encoding);
}

/**
 * Encrypts a message under its data key as it streams. Memory stays at about two chunks: a full chunk is
 * only sealed once more data shows it is not the last.
 */
export function encryptStream(dataKey: Buffer, itemId: string, chunkSize = CHUNK_SIZE): Transform {
  if (!Number.isInteger(chunkSize) || chunkSize <= 0) throw new RangeError(`invalid chunk size ${chunkSize}`);
  const pending = new BlockBuffer();
  let index = 0;
  return new Transform({
    transform(chunk: unknown, encoding: BufferEncoding, callback: TransformCallback) {
      pending.push(toBuffer(chunk, encoding));
      while (pending.length > chunkSize) this.push(aeadEncrypt(dataKey, pending.take(chunkSize), chunkAad(itemId, index++, false)));
      callback();
    },
    flush(callback: TransformCallback) {
      this.push(aeadEncrypt(dataKey, pending.take(pending.length), chunkAad(itemId, index++, true)));
      callback();
    },
  });
}

/** Decrypts what encryptStream wrote; the stream errors (PortalKeyError) on any altered, reordered, dropped, added or cut chunk. */
export function decryptStream(dataKey: Buffer, itemId: string, chunkSize = CHUNK_SIZE): Transform {
  if (!Number.isInteger(chunkSize) || chunkSize <= 0) throw new RangeError(`invalid chunk size ${chunkSize}`);
  const recordSize = chunkSize + CHUNK_OVERHEAD;
  const pending = new BlockBuffer();
  let index = 0;
  const open = (record: Buffer, final: boolean): Buffer => {
    try {
      return aeadDecrypt(dataKey, record, chunkAad(itemId, index, final));
    } catch (error) {
      throw new PortalKeyError(`chunk ${index} of portal item ${itemId} failed authentication`, { cause: error });
    } finally {
      index++;
    }
  };
  return new Transform({
    transform(chunk: unknown, encoding: BufferEncoding, callback: TransformCallback) {
      pending.push(toBuffer(chunk, encoding));
      try {
        // A full record is the last one only if nothing follows it, which only the end of input can say.
        while (pending.length > recordSize) this.push(open(pending.take(recordSize), false));
      } catch (error) {
        callback(error as Error);
        return;
      }
      callback();
    },
    flush(callback: TransformCallback) {
      if (pending.length < CHUNK_OVERHEAD) {
        callback(new PortalKeyError(`portal item ${itemId} ciphertext is truncated (chunk ${index} missing)`));
        return;
      }
      try {
        this.push(open(pending.take(pending.length), true));
      } catch (error) {
        callback(error as Error);
        return;
      }
      callback();
    },
  });
}
