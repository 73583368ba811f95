import { createWriteStream, promises as fs } from 'node:fs';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BodyDigest, BodyVerifier } from '../body-check';
import { EnqueueAbortedError } from '../types';

/**
 * Streams a body into a new file (never over an existing one; 0600), counting and hashing it as it passes, and
 * flushes the file before it is closed. On failure the file is removed: a body stream error throws
 * EnqueueAbortedError, a disk error throws itself (a store failure, not an aborted body). The caller makes the
 * name durable (fsync of the folder, after a rename if it wrote a temp file).
 */
export async function writeBodyFile(file: string, body: Readable): Promise<{ size: number; sha256: string }> {
  const out = createWriteStream(file, { flags: 'wx', mode: 0o600, flush: true });
  // Whichever side fails first is the cause; pipeline then destroys the other with the same error.
  let firstFailure: 'body' | 'disk' | undefined;
  body.once('error', () => (firstFailure ??= 'body'));
  out.once('error', () => (firstFailure ??= 'disk'));
  const digest = new BodyDigest();
  try {
    await pipeline(body, digest, out);
  } catch (error) {
    // The file may still be being opened: remove it only once the stream is closed, or it would reappear.
    if (!out.closed) await new Promise<void>((resolve) => out.once('close', () => resolve()));
    // Created by another writer ('wx' refused it): not ours to remove.
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') await fs.rm(file, { force: true });
    if (firstFailure === 'disk') throw error;
    throw new EnqueueAbortedError(`message body not stored: ${(error as Error).message}`, { cause: error });
  }
  return { size: out.bytesWritten, sha256: digest.digest() };
}

/**
 * A stored body file, opened: refused at once when its size is not the one stored at enqueue, otherwise streamed
 * through a BodyVerifier (a changed byte fails the stream before it ends). `onMismatch` sets the entry aside and
 * returns the error to throw or fail with. The handle is closed on every path.
 */
export async function verifiedBodyStream(
  handle: fs.FileHandle,
  expected: { size: number; sha256?: string | undefined },
  onMismatch: (reason: string, code: 'body-size' | 'body-checksum') => Promise<Error>,
): Promise<Readable> {
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
  const verifier = new BodyVerifier(expected, onMismatch);
  const source = handle.createReadStream();
  source.on('error', (error) => verifier.destroy(error));
  verifier.on('close', () => source.destroy());
  return source.pipe(verifier);
}
