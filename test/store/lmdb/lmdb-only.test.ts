import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { acquireSpoolLock } from '../../../src/store/file/locks';
import { newMessageId } from '../../../src/store/ids';
import type { LmdbEnv } from '../../../src/store/lmdb/env';
import type { LmdbStore } from '../../../src/store/lmdb/lmdb-store';
import type { LmdbBodyFiles } from '../../../src/store/lmdb/body-files';
import { BODY_CHUNK } from '../../../src/store/lmdb/queue';
import { EnqueueAbortedError } from '../../../src/store/types';
import { chunked, evidence, newMessage, readAll } from '../contract';
import { besideOtherRelay, bodyFile, chunksOf, lmdbBackend, rawEnv, rewriteAsChunks } from './harness';

const CHILD = path.join(__dirname, 'admin-child.ts');

/** The store's environment (the test reaches inside to stub the flush and the chunk writes). */
function envOf(store: LmdbStore): LmdbEnv {
  return (store as unknown as { parts: { spool: { env: LmdbEnv } } }).parts.spool.env;
}

/** The store's body files (the test wraps the file writes). */
function bodyFilesOf(store: LmdbStore): LmdbBodyFiles {
  return (store as unknown as { parts: { spool: { bodyFiles: LmdbBodyFiles } } }).parts.spool.bodyFiles;
}

/** Runs the admin child on the spool; resolves with what it printed. */
function runChild(dir: string, actions: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--require', 'tsx/cjs', CHILD, dir, ...actions], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (data: Buffer) => (stdout += data.toString()));
    child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`admin child exited ${code}: ${stderr}`))));
  });
}

describe('LMDB store', () => {
  let backend: ReturnType<typeof lmdbBackend>;

  beforeEach(() => {
    backend = lmdbBackend();
  });

  afterEach(async () => {
    await backend.dispose();
  });

  test('a reopened store reads every message back and rebuilds the schedule (held jobs stay out, deferred keep their time)', async () => {
    const first = await backend.openStore();
    const body = Buffer.concat([Buffer.from('Subject: x\r\n\r\n'), Buffer.alloc(700 * 1024, 0xe2)]);
    const due = await first.enqueue(newMessage(['a@one.test']), chunked(body));
    const held = await first.enqueue(newMessage(['b@two.test']), chunked(Buffer.from('held\r\n')));
    const later = await first.enqueue(newMessage(['c@three.test']), chunked(Buffer.from('later\r\n')));
    await first.hold(held.id);
    const [claimed] = (await first.claimDue('w', 10, 60_000)).filter((c) => c.message.id === later.id);
    const retryAt = Date.now() + 3_600_000;
    await first.completeJob(claimed!.job.id, 'w', { recipients: [{ address: 'c@three.test', outcome: 'deferred', evidence: evidence('deferred', 'rcpt-451') }], retryAt });
    await first.close();

    const second = await backend.openStore();
    expect((await second.listMessages()).map((m) => m.id).sort()).toEqual([due.id, held.id, later.id].sort());
    expect(await second.getMessage(due.id)).toEqual(due);
    expect((await readAll(await second.openBody(due.id))).equals(body)).toBe(true);
    expect((await second.claimDue('w', 10, 7_200_000)).map((c) => c.message.id)).toEqual([due.id]);
    expect((await second.claimDue('w', 10, 60_000, retryAt + 1)).map((c) => c.message.id)).toEqual([later.id]);
    expect((await second.counts()).jobs.held).toBe(1);
  });

  test('an admin command in another process holds, releases, retries and deletes: the running relay follows without a restart', async () => {
    const release = await acquireSpoolLock(backend.dir);
    try {
      const relay = await backend.openStore();
      const parked = await relay.enqueue(newMessage(['a@one.test']), chunked(Buffer.from('parked\r\n')));
      const waiting = await relay.enqueue(newMessage(['b@two.test']), chunked(Buffer.from('waiting\r\n')));
      const doomed = await relay.enqueue(newMessage(['c@three.test']), chunked(Buffer.from('doomed\r\n')));
      await relay.hold(parked.id);
      const [claimed] = (await relay.claimDue('w', 10, 60_000)).filter((c) => c.message.id === waiting.id);
      await relay.completeJob(claimed!.job.id, 'w', {
        recipients: [{ address: 'b@two.test', outcome: 'deferred', evidence: evidence('deferred', 'rcpt-451') }],
        retryAt: Date.now() + 3_600_000,
      });
      expect((await relay.counts()).messages).toBe(3);

      // Held here, so the relay's schedule holds neither: only the other process's notice can bring them back.
      await runChild(backend.dir, [`release:${parked.id}`, `retry:${waiting.id}`, `delete:${doomed.id}`]);

      const ids: string[] = [];
      for (let attempt = 0; attempt < 100 && ids.length < 2; attempt++) {
        ids.push(...(await relay.claimDue('w', 10, 60_000)).map((c) => c.message.id));
        if (ids.length < 2) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(ids.sort()).toEqual([parked.id, waiting.id].sort());
      expect((await relay.counts()).messages).toBe(2);
      // The relay removed the notices it handled.
      const raw = rawEnv(backend.dir);
      try {
        expect(raw.changes.getKeysCount()).toBe(0);
      } finally {
        await raw.close();
      }
    } finally {
      await release();
    }
  });

  test('a message queued by another process (the CLI sending a report) reaches the running relay without a restart', async () => {
    const release = await acquireSpoolLock(backend.dir);
    try {
      const relay = await backend.openStore();
      const id = (await runChild(backend.dir, ['enqueue:postmaster@reports.test'])).trim();
      const claimed: string[] = [];
      for (let attempt = 0; attempt < 100 && claimed.length === 0; attempt++) {
        claimed.push(...(await relay.claimDue('w', 10, 60_000)).map((c) => c.message.id));
        if (claimed.length === 0) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(claimed).toEqual([id]);
      expect((await readAll(await relay.openBody(id))).toString()).toContain('queued by the CLI');
    } finally {
      await release();
    }
  });

  test("a reader beside the relay (no spool lock) sees the relay's own writes in its counts within about a second", async () => {
    const reader = await backend.openStore();
    const writer = await backend.openStore();
    await writer.enqueue(newMessage(['a@one.test', 'b@two.test']), chunked(Buffer.from('x\r\n')));
    let counts = await reader.counts();
    for (let i = 0; i < 60 && counts.jobs.queued < 2; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      counts = await reader.counts();
    }
    expect([counts.messages, counts.jobs.queued]).toEqual([1, 2]);
  });

  test('a claim is checked against the record as committed by another writer, even before its notice is read', async () => {
    const release = await acquireSpoolLock(backend.dir);
    try {
      const relay = await backend.openStore();
      const record = await relay.enqueue(newMessage(['a@one.test']), chunked(Buffer.from('x\r\n')));
      expect(await relay.claimDue('w', 10, 60_000, Date.now() - 60_000)).toEqual([]);
      // Held by another writer, with no notice: only the check at claim can see it.
      await backend.damage.editJob(record.jobs[0]!.id, (job) => (job.state = 'held'));
      expect(await relay.claimDue('w', 10, 60_000)).toEqual([]);
    } finally {
      await release();
    }
  });

  test('a quarantined message of a spool written before bodies were files keeps its record text and body chunks aside until purged', async () => {
    const first = await backend.openStore();
    const body = Buffer.alloc(BODY_CHUNK + 10, 'q');
    const record = await first.enqueue(newMessage(['a@one.test']), chunked(body));
    await first.close();
    await rewriteAsChunks(backend.dir, record.id);
    const store = await backend.openStore();
    await backend.damage.garble(record.jobs[0]!.id);
    expect(await store.getMessage(record.id)).toBeUndefined();
    const [entry] = await store.listQuarantined();
    expect(entry).toEqual(expect.objectContaining({ id: record.id, code: 'invalid-json' }));
    const raw = rawEnv(backend.dir);
    const quarantine = raw.root.openDB<string, [number, string]>({ name: 'quarantine', encoding: 'string' });
    const kept = raw.root.openDB<Buffer, [number, string, number]>({ name: 'kept', encoding: 'binary' });
    try {
      expect(JSON.parse(quarantine.get([entry!.at, record.id])!)).toEqual(expect.objectContaining({ record: '{"id": "truncated', chunks: 2 }));
      expect(Buffer.concat([...kept.getRange()].map(({ value }) => Buffer.from(value))).equals(body)).toBe(true);
      expect(chunksOf(raw, record.id)).toEqual([]);
      await store.purgeQuarantined(Date.now() + 1);
      raw.root.resetReadTxn();
      expect(kept.getKeysCount()).toBe(0);
      expect(quarantine.getKeysCount()).toBe(0);
    } finally {
      await raw.close();
    }
  });

  test('enqueue and admin changes resolve only once their commit is flushed to disk, not at the commit', async () => {
    const store = await backend.openStore();
    const env = envOf(store);
    let openGate!: () => void;
    const gate = new Promise<boolean>((resolve) => (openGate = () => resolve(true)));
    const flushes: string[] = [];
    Object.defineProperty(env.root, 'flushed', { configurable: true, get: () => (flushes.push('asked'), gate) });
    const id = newMessageId();
    let resolved = false;
    const pending = store.enqueue(newMessage(['a@one.test']), chunked(Buffer.from('hello\r\n')), {}, { id }).then((record) => ((resolved = true), record));
    // Committed (visible to a reader) while the flush has not been reported.
    for (let i = 0; i < 200 && env.messages.get(id) === undefined; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(env.messages.get(id)).toBeDefined();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(resolved).toBe(false);
    expect(flushes.length).toBeGreaterThan(0);
    openGate();
    expect((await pending).id).toBe(id);

    let holdResolved = false;
    let openHold!: () => void;
    const holdGate = new Promise<boolean>((resolve) => (openHold = () => resolve(true)));
    Object.defineProperty(env.root, 'flushed', { configurable: true, get: () => holdGate });
    const hold = store.hold(id).then(() => (holdResolved = true));
    for (let i = 0; i < 200 && !String(env.messages.get(id)).includes('"held"'); i++) await new Promise((resolve) => setTimeout(resolve, 10));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(holdResolved).toBe(false);
    openHold();
    await hold;
    expect(holdResolved).toBe(true);
  });

  test('a body stream that fails part-way stores nothing: no chunk and no record', async () => {
    const store = await backend.openStore();
    const body = new Readable({ read() {} });
    const pending = store.enqueue(newMessage(['a@one.test']), body);
    for (let i = 0; i < 6; i++) body.push(Buffer.alloc(BODY_CHUNK, 'x'));
    setTimeout(() => body.destroy(new Error('client went away')), 50);
    await expect(pending).rejects.toBeInstanceOf(EnqueueAbortedError);
    const env = envOf(store);
    expect(env.bodies.getKeysCount()).toBe(0);
    expect(env.messages.getKeysCount()).toBe(0);
    // 1.5 MiB went to a body file before the stream failed: removed.
    expect(await fs.readdir(bodyFilesOf(store).dir)).toEqual(['kept']);
  });

  test('a record commit that fails is a store failure and leaves neither record nor body file', async () => {
    const store = await backend.openStore();
    const env = envOf(store);
    const failure = Object.assign(new Error('MDB_MAP_FULL: Environment mapsize limit reached'), { code: 'MDB_MAP_FULL' });
    const put = jest.spyOn(env.messages, 'putSync').mockImplementation(() => {
      throw failure;
    });
    try {
      const error = await store.enqueue(newMessage(['a@one.test']), chunked(Buffer.alloc(600 * 1024, 'y'))).catch((e: unknown) => e);
      expect(error).toBe(failure);
      expect(error).not.toBeInstanceOf(EnqueueAbortedError);
    } finally {
      put.mockRestore();
    }
    expect(env.messages.getKeysCount()).toBe(0);
    expect(await fs.readdir(bodyFilesOf(store).dir)).toEqual(['kept']);
  });

  test('a sweep of more finished messages than one transaction takes removes them all, bodies first', async () => {
    const store = await backend.openStore({ keepFinished: 0 });
    const raw = rawEnv(backend.dir);
    try {
      const ids: string[] = [];
      for (let i = 0; i < 300; i++) ids.push((await store.enqueue(newMessage([`r${i}@one.test`]), chunked(Buffer.from(`body ${i}\r\n`)))).id);
      for (const claimed of await store.claimDue('w1', 300, 60_000)) {
        await store.completeJob(claimed.job.id, 'w1', { recipients: [{ address: claimed.job.recipients[0]!.address, outcome: 'delivered', evidence: evidence('delivered', 'delivered') }] });
      }
      expect(await store.sweep(Date.now() + 1)).toBe(300);
      expect(await store.listMessages({ includeDeleted: true })).toEqual([]);
      for (const id of ids) expect(chunksOf(raw, id)).toEqual([]);
      expect(await fs.readdir(bodyFilesOf(store).dir)).toEqual(['kept']);
    } finally {
      await raw.close();
    }
  });

  test('bodies at the chunk boundaries read back byte for byte from their files, and from chunks as older spools kept them', async () => {
    const sizes = [1, BODY_CHUNK - 1, BODY_CHUNK, BODY_CHUNK + 1, 2 * BODY_CHUNK, 2 * BODY_CHUNK + 7];
    const bodies = new Map<string, Buffer>();
    const first = await backend.openStore();
    for (const size of sizes) {
      const body = Buffer.alloc(size, size % 251);
      const record = await first.enqueue(newMessage(['a@one.test']), chunked(body, 10_000));
      expect((await fs.readFile(bodyFile(backend.dir, record.id))).equals(body)).toBe(true);
      expect((await readAll(await first.openBody(record.id))).equals(body)).toBe(true);
      bodies.set(record.id, body);
    }
    await first.close();
    for (const id of bodies.keys()) await rewriteAsChunks(backend.dir, id);
    const store = await backend.openStore();
    const raw = rawEnv(backend.dir);
    try {
      for (const [id, body] of bodies) {
        const expected: number[] = [];
        for (let left = body.length; left > 0; left -= BODY_CHUNK) expected.push(Math.min(left, BODY_CHUNK));
        expect(chunksOf(raw, id).map((c) => c.length)).toEqual(expected);
        expect((await readAll(await store.openBody(id))).equals(body)).toBe(true);
      }
    } finally {
      await raw.close();
    }
  });

  test('a 20 MB body is streamed into its file with backpressure: never much more than a chunk of it in memory', async () => {
    const store = await backend.openStore();
    const files = bodyFilesOf(store);
    const body = Buffer.alloc(20 * 1024 * 1024);
    for (let i = 0; i < body.length; i += 4096) body.writeUInt32BE(i, i);
    let written = 0;
    let most = 0;
    const create = files.create.bind(files);
    const spy = jest.spyOn(files, 'create').mockImplementation(async (id) => {
      const handle = await create(id);
      const write = handle.write.bind(handle) as (bytes: Buffer, offset: number, length: number) => Promise<{ bytesWritten: number }>;
      (handle as unknown as { write: typeof write }).write = async (bytes, offset, length) => {
        const result = await write(bytes, offset, length);
        written += result.bytesWritten;
        return result;
      };
      return handle;
    });
    // Pulled 64 KiB at a time: what was pulled and not yet written is what the store (and the stream's buffer) holds.
    const piece = 64 * 1024;
    const source = Readable.from(
      (function* () {
        for (let offset = 0; offset < body.length; offset += piece) {
          most = Math.max(most, offset + piece - written);
          yield body.subarray(offset, offset + piece);
        }
      })(),
    );
    let record;
    try {
      record = await store.enqueue(newMessage(['a@one.test']), source);
    } finally {
      spy.mockRestore();
    }
    expect(written).toBe(body.length);
    // A write of a chunk or so, and Readable.from's 16 pieces read ahead.
    expect(most).toBeLessThanOrEqual(2 * BODY_CHUNK + 16 * piece);
    const raw = rawEnv(backend.dir);
    try {
      expect(chunksOf(raw, record.id)).toEqual([]);
    } finally {
      await raw.close();
    }
    expect((await fs.readFile(bodyFile(backend.dir, record.id))).equals(body)).toBe(true);
    expect((await readAll(await store.openBody(record.id))).equals(body)).toBe(true);
  });

  test('chunks without a record (an upload cut short) are removed at open only by the relay holding the spool lock', async () => {
    const store = await backend.openStore();
    const kept = await store.enqueue(newMessage(['a@one.test']), chunked(Buffer.from('kept\r\n')));
    await store.close();
    const orphan = newMessageId();
    const raw = rawEnv(backend.dir);
    await raw.bodies.put([orphan, 0], Buffer.alloc(BODY_CHUNK, 'o'));
    await raw.bodies.put([orphan, 1], Buffer.from('tail'));
    const count = () => {
      raw.root.resetReadTxn();
      return raw.bodies.getKeysCount({ start: [orphan, 0], end: [orphan, Number.MAX_SAFE_INTEGER] });
    };

    // Another process is the relay: an admin command beside it never removes what may be its upload.
    await besideOtherRelay(backend.dir, async () => {
      await (await backend.openStore()).close();
      expect(count()).toBe(2);
    });

    const release = await acquireSpoolLock(backend.dir);
    try {
      const owner = await backend.openStore();
      expect(count()).toBe(0);
      expect((await readAll(await owner.openBody(kept.id))).toString()).toBe('kept\r\n');
    } finally {
      await release();
      await raw.close();
    }
  });
});
