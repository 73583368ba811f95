import { randomBytes } from 'node:crypto';
import { Readable, type Transform } from 'node:stream';
import { CHUNK_OVERHEAD, CHUNK_SIZE, decryptStream, encryptStream, newDataKey, PortalKeyError } from '../../../src/portal/crypto';

/** Runs `data` through a transform, written in pieces of the given sizes (cycled). */
async function through(transform: Transform, data: Buffer, pieces: number[] = [data.length || 1]): Promise<Buffer> {
  const parts: Buffer[] = [];
  let offset = 0;
  let i = 0;
  const source: Buffer[] = [];
  while (offset < data.length) {
    const size = Math.max(1, pieces[i++ % pieces.length]!);
    source.push(data.subarray(offset, offset + size));
    offset += size;
  }
  const output = Readable.from(source).pipe(transform);
  for await (const chunk of output) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

function records(ciphertext: Buffer, chunkSize: number): Buffer[] {
  const size = chunkSize + CHUNK_OVERHEAD;
  const out: Buffer[] = [];
  for (let offset = 0; offset < ciphertext.length; offset += size) out.push(ciphertext.subarray(offset, offset + size));
  return out;
}

const key = newDataKey();
const item = 'ITEM0000000000000000000.0123456789abcdef';

describe('chunked AES-256-GCM streams', () => {
  test.each([
    ['0 bytes', 0, 16],
    ['1 byte', 1, 16],
    ['exactly one chunk', 16, 16],
    ['one chunk and one byte', 17, 16],
    ['many chunks with odd write sizes', 16 * 37 + 5, 16],
    ['several default-size chunks', CHUNK_SIZE * 3 + 1234, CHUNK_SIZE],
  ])('round trip of %s', async (_name, length, chunkSize) => {
    const plain = randomBytes(length);
    const ciphertext = await through(encryptStream(key, item, chunkSize), plain, [1, 7, 3, 33, 1000]);
    // Every record carries its own IV and tag, and there is always one final record.
    expect(ciphertext.length).toBe(length + CHUNK_OVERHEAD * (Math.floor(length / chunkSize) + (length % chunkSize === 0 && length > 0 ? 0 : 1)));
    expect(ciphertext.includes(plain.subarray(0, Math.min(8, length))) && length >= 8).toBe(false);
    const back = await through(decryptStream(key, item, chunkSize), ciphertext, [5, 1, 64, 9]);
    expect(back.equals(plain)).toBe(true);
  });

  test('the same plaintext encrypts differently each time (fresh IVs)', async () => {
    const plain = Buffer.from('same text');
    const a = await through(encryptStream(key, item, 16), plain);
    const b = await through(encryptStream(key, item, 16), plain);
    expect(a.equals(b)).toBe(false);
  });

  describe('fails on', () => {
    const chunkSize = 16;
    let ciphertext: Buffer;
    const plain = Buffer.from('0123456789abcdef'.repeat(4) + 'tail');

    beforeAll(async () => {
      ciphertext = await through(encryptStream(key, item, chunkSize), plain);
      expect(records(ciphertext, chunkSize)).toHaveLength(5);
    });

    async function expectFailure(altered: Buffer, options: { key?: Buffer; item?: string } = {}) {
      await expect(through(decryptStream(options.key ?? key, options.item ?? item, chunkSize), altered)).rejects.toBeInstanceOf(PortalKeyError);
    }

    test('a flipped bit in a chunk', async () => {
      const altered = Buffer.from(ciphertext);
      altered[CHUNK_OVERHEAD + chunkSize + 14] = altered[CHUNK_OVERHEAD + chunkSize + 14]! ^ 0x01;
      await expectFailure(altered);
    });

    test('reordered chunks', async () => {
      const [a, b, ...rest] = records(ciphertext, chunkSize);
      await expectFailure(Buffer.concat([b!, a!, ...rest]));
    });

    test('a dropped middle chunk', async () => {
      const parts = records(ciphertext, chunkSize);
      parts.splice(2, 1);
      await expectFailure(Buffer.concat(parts));
    });

    test('a dropped last chunk (cut at a chunk boundary)', async () => {
      await expectFailure(Buffer.concat(records(ciphertext, chunkSize).slice(0, -1)));
    });

    test('truncation inside a chunk', async () => {
      await expectFailure(ciphertext.subarray(0, ciphertext.length - 3));
      await expectFailure(ciphertext.subarray(0, 10));
      await expectFailure(Buffer.alloc(0));
    });

    test('an appended chunk', async () => {
      const parts = records(ciphertext, chunkSize);
      await expectFailure(Buffer.concat([...parts, parts[1]!]));
      const other = await through(encryptStream(key, item, chunkSize), Buffer.from('more'));
      await expectFailure(Buffer.concat([ciphertext, other]));
    });

    test('another item id', async () => {
      await expectFailure(ciphertext, { item: 'ITEM0000000000000000000.fedcba9876543210' });
    });

    test('another data key', async () => {
      await expectFailure(ciphertext, { key: newDataKey() });
    });

    test('another chunk size', async () => {
      await expect(through(decryptStream(key, item, 32), ciphertext)).rejects.toBeInstanceOf(PortalKeyError);
    });
  });

  test('memory stays bounded: the encryptor emits chunks before the input ends', async () => {
    const chunkSize = 1024;
    const encrypt = encryptStream(key, item, chunkSize);
    const out: Buffer[] = [];
    encrypt.on('data', (chunk: Buffer) => out.push(chunk));
    for (let i = 0; i < 10; i++) encrypt.write(randomBytes(1024));
    await new Promise((resolve) => setImmediate(resolve));
    // Nine full chunks are known not to be last; the tenth waits for more input or the end.
    expect(out).toHaveLength(9);
    encrypt.end();
    await new Promise((resolve) => encrypt.on('end', resolve));
    // Ten full chunks of input: the tenth is the final record, no empty one follows.
    expect(out).toHaveLength(10);
    expect(out.every((record) => record.length === chunkSize + CHUNK_OVERHEAD)).toBe(true);
  });
});
