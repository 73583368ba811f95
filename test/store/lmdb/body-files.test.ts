import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { silentLogger } from '../../../src/log/logger';
import { acquireSpoolLock } from '../../../src/store/file/locks';
import { FileStore } from '../../../src/store/file/file-store';
import { newMessageId } from '../../../src/store/ids';
import { bodyFilesPath } from '../../../src/store/lmdb/body-files';
import { LmdbStore } from '../../../src/store/lmdb/lmdb-store';
import { BODY_CHUNK } from '../../../src/store/lmdb/queue';
import { EnqueueAbortedError, StoreError } from '../../../src/store/types';
import { seededRandom } from '../../support/crash-load';
import { chunked, evidence, newMessage, readAll } from '../contract';
import { besideOtherRelay, bodyFile, chunksOf, flipFileByte, lmdbBackend, rawEnv, spoolFilesContaining } from './harness';

/** The bodies are pseudo-random bytes from one seed, printed so a failure replays (BODY_SEED=<seed>). */
const SEED = process.env.BODY_SEED ? Number(process.env.BODY_SEED) : Math.floor(Math.random() * 2 ** 31);
process.stdout.write(`body-files test: random bodies from seed ${SEED}\n`);
const random = seededRandom(SEED);

function randomBody(size: number): Buffer {
  const body = Buffer.alloc(size);
  let i = 0;
  for (; i + 4 <= size; i += 4) body.writeUInt32LE(Math.floor(random() * 2 ** 32), i);
  for (; i < size; i++) body[i] = Math.floor(random() * 256);
  return body;
}

const LARGE = 3 * 1024 * 1024 + 5;

describe('LMDB store: every body is a file', () => {
  let backend: ReturnType<typeof lmdbBackend>;

  beforeEach(() => {
    backend = lmdbBackend();
  });

  afterEach(async () => {
    await backend.dispose();
  });

  const files = () => bodyFilesPath(backend.dir);
  const kept = () => path.join(files(), 'kept');
  const exists = (file: string) =>
    fs.access(file).then(
      () => true,
      () => false,
    );
  const chunkCount = async (id: string) => {
    const raw = rawEnv(backend.dir);
    try {
      return chunksOf(raw, id).length;
    } finally {
      await raw.close();
    }
  };
  const finish = async (store: LmdbStore, id: string) => {
    const claimed = (await store.claimDue('w', 10, 60_000)).find((c) => c.message.id === id)!;
    await store.completeJob(claimed.job.id, 'w', { recipients: [{ address: claimed.job.recipients[0]!.address, outcome: 'delivered', evidence: evidence('delivered', 'delivered') }] });
  };

  test('a large body is one file (0600 in a 0700 folder), no chunks, and reads back byte for byte', async () => {
    const store = await backend.openStore();
    const body = randomBody(LARGE);
    const record = await store.enqueue(newMessage(['a@one.test']), chunked(body, 100_000));
    expect(record.size).toBe(body.length);
    expect((await fs.stat(files())).mode & 0o777).toBe(0o700);
    expect((await fs.stat(kept())).mode & 0o777).toBe(0o700);
    expect((await fs.stat(bodyFile(backend.dir, record.id))).mode & 0o777).toBe(0o600);
    expect((await fs.readFile(bodyFile(backend.dir, record.id))).equals(body)).toBe(true);
    expect(await chunkCount(record.id)).toBe(0);
    expect((await readAll(await store.openBody(record.id))).equals(body)).toBe(true);
  });

  test('a small body is a file too; an empty body has none and reads back empty', async () => {
    const store = await backend.openStore();
    const text = Buffer.from('Subject: hi\r\n\r\nhello\r\n');
    const tiny = await store.enqueue(newMessage(['a@one.test']), chunked(text));
    expect(await chunkCount(tiny.id)).toBe(0);
    expect((await fs.readFile(bodyFile(backend.dir, tiny.id))).equals(text)).toBe(true);
    expect((await readAll(await store.openBody(tiny.id))).equals(text)).toBe(true);
    const empty = await store.enqueue(newMessage(['a@one.test']), chunked(Buffer.alloc(0)));
    expect(empty.size).toBe(0);
    expect(await exists(bodyFile(backend.dir, empty.id))).toBe(false);
    expect((await readAll(await store.openBody(empty.id))).length).toBe(0);
  });

  test('a body removed by the retention sweep leaves none of its bytes in any file of the spool (LMDB frees pages without clearing them)', async () => {
    const store = await backend.openStore({ keepFinished: 86_400_000 });
    const marker = `canary-${SEED}-${newMessageId()}`;
    const record = await store.enqueue(newMessage(['a@one.test']), chunked(Buffer.from(`Subject: x\r\n\r\n${marker}\r\n`)));
    const holding = () => spoolFilesContaining(backend.dir, marker);
    // The positive control: before the sweep the grep finds the body, in its file only.
    expect(await holding()).toEqual([path.relative(backend.dir, bodyFile(backend.dir, record.id))]);
    await finish(store, record.id);
    await store.sweep();
    expect((await store.getMessage(record.id))!.bodyRemoved).toBe(true);
    expect(await holding()).toEqual([]);
  });

  test('a changed byte in a body file fails the stream and quarantines the message (body-checksum); its file is kept until purged', async () => {
    const store = await backend.openStore();
    const body = randomBody(LARGE);
    const record = await store.enqueue(newMessage(['a@one.test']), chunked(body, 100_000));
    await flipFileByte(bodyFile(backend.dir, record.id), 2 * 1024 * 1024);
    const failure = await readAll(await store.openBody(record.id)).catch((error: unknown) => error);
    expect((failure as StoreError).code).toBe('damaged');
    const [entry] = await store.listQuarantined();
    expect([entry!.id, entry!.kind, entry!.code]).toEqual([record.id, 'body', 'body-checksum']);
    const keptFile = path.join(kept(), `${entry!.at}-${record.id}`);
    expect(await exists(bodyFile(backend.dir, record.id))).toBe(false);
    expect((await fs.readFile(keptFile)).length).toBe(body.length);
    expect(await store.claimDue('w', 10, 60_000)).toEqual([]);
    await store.purgeQuarantined(Date.now() + 1);
    expect(await exists(keptFile)).toBe(false);
    expect(await fs.readdir(kept())).toEqual([]);
  });

  test('a truncated body file is refused at open (body-size) and kept aside', async () => {
    const store = await backend.openStore();
    const record = await store.enqueue(newMessage(['a@one.test']), chunked(randomBody(LARGE), 100_000));
    await fs.truncate(bodyFile(backend.dir, record.id), 1_500_000);
    const failure = await store.openBody(record.id).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(StoreError);
    expect((failure as StoreError).code).toBe('damaged');
    const [entry] = await store.listQuarantined();
    expect([entry!.id, entry!.code]).toEqual([record.id, 'body-size']);
    expect((await fs.stat(path.join(kept(), `${entry!.at}-${record.id}`))).size).toBe(1_500_000);
  });

  test('a missing body file with no chunks reads as a missing body', async () => {
    const store = await backend.openStore();
    const record = await store.enqueue(newMessage(['a@one.test']), chunked(randomBody(LARGE), 100_000));
    await fs.rm(bodyFile(backend.dir, record.id));
    const failure = await store.openBody(record.id).catch((error: unknown) => error);
    expect((failure as StoreError).code).toBe('not-found');
  });

  test('a delivered message keeps its file until the retention sweep removes the body; an admin delete removes it at once', async () => {
    const store = await backend.openStore({ keepFinished: 0 });
    const swept = await store.enqueue(newMessage(['a@one.test']), chunked(randomBody(LARGE), 100_000));
    const deleted = await store.enqueue(newMessage(['b@two.test']), chunked(randomBody(LARGE), 100_000));
    await finish(store, swept.id);
    expect(await exists(bodyFile(backend.dir, swept.id))).toBe(true);
    await store.deleteMessage(deleted.id);
    expect(await exists(bodyFile(backend.dir, deleted.id))).toBe(false);
    expect(await store.sweep()).toBe(1);
    expect(await exists(bodyFile(backend.dir, swept.id))).toBe(false);
    expect(await fs.readdir(files())).toEqual(['kept']);
  });

  test('a sweep that keeps the finished record (keepFinished) still removes the body file', async () => {
    const store = await backend.openStore({ keepFinished: 86_400_000 });
    const record = await store.enqueue(newMessage(['a@one.test']), chunked(randomBody(LARGE), 100_000));
    await finish(store, record.id);
    expect(await store.sweep()).toBe(0);
    expect((await store.getMessage(record.id))!.bodyRemoved).toBe(true);
    expect(await exists(bodyFile(backend.dir, record.id))).toBe(false);
  });

  test('body files no record needs are removed at open only by the process that may clean', async () => {
    const store = await backend.openStore({ keepFinished: 86_400_000 });
    const live = await store.enqueue(newMessage(['a@one.test']), chunked(randomBody(LARGE), 100_000));
    const finished = await store.enqueue(newMessage(['b@two.test']), chunked(Buffer.alloc(10_000, 'f'), 100_000));
    await finish(store, finished.id);
    await store.sweep();
    await store.close();
    // An upload cut short (no record), a removal cut short (record without body), a purge cut short (kept file, no entry).
    const orphan = newMessageId();
    await fs.writeFile(bodyFile(backend.dir, orphan), 'cut short', { mode: 0o600 });
    await fs.writeFile(bodyFile(backend.dir, finished.id), 'removal cut short', { mode: 0o600 });
    const unkept = path.join(kept(), `${Date.now()}-${newMessageId()}`);
    await fs.writeFile(unkept, 'purge cut short', { mode: 0o600 });
    const left = async () => (await fs.readdir(files())).filter((name) => name !== 'kept').sort();

    // Beside a running relay (another process) nothing is removed, and the large body reads from its file.
    await besideOtherRelay(backend.dir, async () => {
      const beside = await backend.openStore();
      expect(await left()).toEqual([live.id, orphan, finished.id].sort());
      expect(await exists(unkept)).toBe(true);
      expect((await readAll(await beside.openBody(live.id))).length).toBe(LARGE);
      await beside.close();
    });

    const release = await acquireSpoolLock(backend.dir);
    try {
      const owner = await backend.openStore();
      expect(await left()).toEqual([live.id]);
      expect(await exists(unkept)).toBe(false);
      expect((await readAll(await owner.openBody(live.id))).length).toBe(LARGE);
    } finally {
      await release();
    }
  });

  test('a quarantined message whose file move was cut short has it moved into kept/ at the next open', async () => {
    const store = await backend.openStore();
    const record = await store.enqueue(newMessage(['a@one.test']), chunked(randomBody(LARGE), 100_000));
    await store.close();
    // The move into kept/ lost (a crash after the commit): the record is quarantined, the file still in place.
    await backend.damage.garble(record.jobs[0]!.id);
    const saved = path.join(backend.dir, 'saved-body');
    const reopened = await backend.openStore();
    const [entry] = await reopened.listQuarantined();
    const keptFile = path.join(kept(), `${entry!.at}-${record.id}`);
    await fs.rename(keptFile, saved);
    await fs.rename(saved, bodyFile(backend.dir, record.id));
    await reopened.close();
    await (await backend.openStore()).close();
    expect(await exists(bodyFile(backend.dir, record.id))).toBe(false);
    expect((await fs.stat(keptFile)).size).toBe(LARGE);
  });

  test('a body stream that fails part-way is an aborted enqueue: no file, no record', async () => {
    const store = await backend.openStore();
    const body = new Readable({ read() {} });
    const pending = store.enqueue(newMessage(['a@one.test']), body);
    const data = randomBody(2 * 1024 * 1024);
    for (let offset = 0; offset < data.length; offset += BODY_CHUNK) body.push(data.subarray(offset, offset + BODY_CHUNK));
    setTimeout(() => body.destroy(new Error('client went away')), 50);
    await expect(pending).rejects.toBeInstanceOf(EnqueueAbortedError);
    expect(await fs.readdir(files())).toEqual(['kept']);
    expect(await store.listMessages()).toEqual([]);
  });

  test('a failing file write is a store failure, not an aborted body, and leaves no file and no record', async () => {
    const store = await backend.openStore();
    const bodyFiles = (store as unknown as { parts: { spool: { bodyFiles: { create(id: string): Promise<fs.FileHandle> } } } }).parts.spool.bodyFiles;
    const failure = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    const create = bodyFiles.create.bind(bodyFiles);
    const spy = jest.spyOn(bodyFiles, 'create').mockImplementation(async (id) => {
      const handle = await create(id);
      (handle as unknown as { write: () => Promise<never> }).write = () => Promise.reject(failure);
      return handle;
    });
    try {
      const error = await store.enqueue(newMessage(['a@one.test']), chunked(randomBody(LARGE), 100_000)).catch((e: unknown) => e);
      expect(error).toBe(failure);
      expect(error).not.toBeInstanceOf(EnqueueAbortedError);
    } finally {
      spy.mockRestore();
    }
    expect(await fs.readdir(files())).toEqual(['kept']);
    expect(await store.listMessages()).toEqual([]);
  });

  test('a spool written before bodies were files (a body in chunks) still reads, and its chunks go with the message', async () => {
    const store = await backend.openStore({ keepFinished: 0 });
    const body = randomBody(LARGE);
    const record = await store.enqueue(newMessage(['a@one.test']), chunked(body, 100_000));
    await store.close();
    // Rewritten as the chunk path stored it: BODY_CHUNK pieces under [id, n], no file.
    const raw = rawEnv(backend.dir);
    try {
      await raw.root.transaction(() => {
        for (let n = 0; n * BODY_CHUNK < body.length; n++) raw.bodies.putSync([record.id, n], body.subarray(n * BODY_CHUNK, (n + 1) * BODY_CHUNK));
      });
      await fs.rm(bodyFile(backend.dir, record.id));
      const old = await backend.openStore({ keepFinished: 0 });
      expect((await readAll(await old.openBody(record.id))).equals(body)).toBe(true);
      await finish(old, record.id);
      expect(await old.sweep()).toBe(1);
      raw.root.resetReadTxn();
      expect(chunksOf(raw, record.id)).toEqual([]);
    } finally {
      await raw.close();
    }
  });

  test('moving a file spool in takes a large body over as a file', async () => {
    const options = { path: backend.dir, keepFinished: 86_400_000, logger: silentLogger() };
    const fileStore = new FileStore(options);
    await fileStore.open();
    const body = randomBody(LARGE);
    const record = await fileStore.enqueue(newMessage(['a@one.test']), chunked(body, 100_000));
    await fileStore.close();
    const store = new LmdbStore(options);
    await store.open();
    try {
      expect(await exists(bodyFile(backend.dir, record.id))).toBe(true);
      expect(await chunkCount(record.id)).toBe(0);
      expect((await readAll(await store.openBody(record.id))).equals(body)).toBe(true);
    } finally {
      await store.close();
    }
  });
});
