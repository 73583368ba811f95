import { spawn } from 'node:child_process';
import { mkdtempSync, promises as fs, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../src/log/logger';
import { FileStore } from '../../src/store/file/file-store';
import { newMessageId } from '../../src/store/ids';
import { acquireSpoolLock, currentOwner, formatOwner, processFacts } from '../../src/store/file/locks';
import { Readable } from 'node:stream';
import { EnqueueAbortedError, type Store } from '../../src/store/types';
import { chunked, evidence, newMessage, readAll, storeContract, type ContractBackend, type DamageHooks } from './contract';

/** Hand-damage of the spool's files, as a disk fault or an operator's edit would leave them. */
function fileDamage(dir: string): DamageHooks {
  const meta = (id: string) => path.join(dir, 'meta', `${id}.json`);
  const editMeta = async (id: string, change: (record: Record<string, unknown>) => void) => {
    const record = JSON.parse(await fs.readFile(meta(id), 'utf8')) as Record<string, unknown>;
    change(record);
    await fs.writeFile(meta(id), JSON.stringify(record));
  };
  return {
    truncateBody: (id, bytes) => fs.truncate(path.join(dir, 'bodies', id), bytes),
    async flipBodyByte(id, offset) {
      const handle = await fs.open(path.join(dir, 'bodies', id), 'r+');
      const byte = Buffer.alloc(1);
      await handle.read(byte, 0, 1, offset);
      byte[0] = byte[0]! ^ 0xff;
      await handle.write(byte, 0, 1, offset);
      await handle.close();
    },
    editMessage: editMeta,
    editJob: (jobId, change) =>
      editMeta(jobId.split('/')[0]!, (record) => {
        const job = (record.jobs as Array<Record<string, unknown>>).find((j) => j.id === jobId)!;
        change(job);
      }),
    garble: (jobId) => fs.writeFile(meta(jobId.split('/')[0]!), '{"id": "truncated'),
  };
}

/** The start time /proc reports for a PID, where there is a /proc. */
function processStart(pid: number): { start?: string } {
  const stat = processFacts(pid).stat;
  return stat ? { start: stat.start } : {};
}

function fileBackend(): ContractBackend & { dir: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-spool-'));
  const opened: Store[] = [];
  return {
    dir,
    damage: fileDamage(dir),
    async open(options = {}) {
      const store = new FileStore({
        path: dir,
        keepFinished: options.keepFinished ?? 7 * 86_400_000,
        fallbackRetention: options.fallbackRetention,
        quarantineRetention: options.quarantineRetention,
        logger: silentLogger(),
      });
      await store.open();
      opened.push(store);
      return store;
    },
    async dispose() {
      for (const store of opened) await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

storeContract('file', fileBackend);

describe('file store on disk', () => {
  let backend: ReturnType<typeof fileBackend>;

  beforeEach(() => {
    backend = fileBackend();
  });

  afterEach(async () => {
    await backend.dispose();
  });

  test('a message survives a fresh store instance byte for byte', async () => {
    const body = Buffer.concat([Buffer.from('Subject: x\r\n\r\n'), Buffer.from([0, 1, 0xc3, 0xa9, 0xff, 0x0d, 0x0a]), Buffer.alloc(1024 * 1024, 0xe2)]);
    const first = await backend.open();
    const record = await first.enqueue(newMessage(['a@one.test', 'b@two.test']), chunked(body), { messageId: '<keep@clinic.test>' });
    await first.close();
    const second = await backend.open();
    expect(await second.getMessage(record.id)).toEqual(record);
    expect((await readAll(await second.openBody(record.id))).equals(body)).toBe(true);
    expect((await second.claimDue('w1', 10, 60_000)).map((c) => c.job.id).sort()).toEqual(record.jobs.map((j) => j.id).sort());
  });

  test('an aborted body leaves no temp file and no body behind', async () => {
    const store = await backend.open();
    const body = new Readable({ read() {} });
    const pending = store.enqueue(newMessage(['a@one.test']), body);
    body.push(Buffer.alloc(100_000, 'x'));
    setImmediate(() => body.destroy(new Error('client went away')));
    await expect(pending).rejects.toBeInstanceOf(EnqueueAbortedError);
    expect(await fs.readdir(path.join(backend.dir, 'tmp'))).toEqual([]);
    expect(await fs.readdir(path.join(backend.dir, 'bodies'))).toEqual([]);
    expect(await fs.readdir(path.join(backend.dir, 'meta'))).toEqual([]);
  });

  test('a second enqueue under a given id leaves one body file, the first, and nothing in tmp', async () => {
    const store = await backend.open();
    const id = newMessageId();
    const body = Buffer.from('Subject: failure notice\r\n\r\nfirst try\r\n');
    await store.enqueue(newMessage(['a@one.test']), chunked(body), {}, { id });
    await store.enqueue(newMessage(['a@one.test']), chunked(Buffer.from('Subject: failure notice\r\n\r\nsecond try\r\n')), {}, { id });
    expect(await fs.readdir(path.join(backend.dir, 'bodies'))).toEqual([id]);
    expect(await fs.readdir(path.join(backend.dir, 'meta'))).toEqual([`${id}.json`]);
    expect(await fs.readdir(path.join(backend.dir, 'tmp'))).toEqual([]);
    expect((await fs.readFile(path.join(backend.dir, 'bodies', id))).equals(body)).toBe(true);
  });

  test('a failing disk is reported as a store failure, not as an aborted body', async () => {
    const store = await backend.open();
    await fs.rm(path.join(backend.dir, 'tmp'), { recursive: true });
    await fs.writeFile(path.join(backend.dir, 'tmp'), 'not a folder');
    const failure = await store.enqueue(newMessage(['a@one.test']), chunked(Buffer.from('x\r\n'))).catch((error: unknown) => error);
    expect(failure).not.toBeInstanceOf(EnqueueAbortedError);
    expect((failure as NodeJS.ErrnoException).code).toBe('ENOTDIR');
    expect(await fs.readdir(path.join(backend.dir, 'meta'))).toEqual([]);
  });

  test('damaged entries are quarantined at open and the rest still loads', async () => {
    const store = await backend.open();
    const good = await store.enqueue(newMessage(['a@one.test']), chunked(Buffer.from('hello\r\n')));
    const lonely = await store.enqueue(newMessage(['b@one.test']), chunked(Buffer.from('no body soon\r\n')));
    await store.close();
    await fs.writeFile(path.join(backend.dir, 'meta', '01ARZ3NDEKTSV4RRFFQ69G5FAV.json'), '{"id": "01ARZ3NDEK');
    await fs.rm(path.join(backend.dir, 'bodies', lonely.id));
    await fs.writeFile(path.join(backend.dir, 'bodies', '01ARZ3NDEKTSV4RRFFQ69G5FAW'), 'orphan body');
    await fs.writeFile(path.join(backend.dir, 'tmp', 'half-written.tmp'), 'partial');

    // Without the relay's spool lock (an admin command): damaged records go, but young temp files and
    // bodies without metadata may belong to a writer right now and stay.
    const admin = await backend.open();
    expect((await admin.listMessages()).map((m) => m.id)).toEqual([good.id]);
    expect(await fs.readdir(path.join(backend.dir, 'quarantine'))).toHaveLength(2);
    expect(await fs.readdir(path.join(backend.dir, 'tmp'))).toEqual(['half-written.tmp']);

    // The relay, holding the spool lock, sets every leftover aside.
    const release = await acquireSpoolLock(backend.dir);
    try {
      const relay = await backend.open();
      expect((await relay.listMessages()).map((m) => m.id)).toEqual([good.id]);
      expect(await fs.readdir(path.join(backend.dir, 'quarantine'))).toHaveLength(4);
      expect(await fs.readdir(path.join(backend.dir, 'tmp'))).toEqual([]);
      expect((await fs.readdir(path.join(backend.dir, 'bodies'))).sort()).toEqual([good.id]);
      // A second open finds nothing left to quarantine.
      await backend.open();
      expect(await fs.readdir(path.join(backend.dir, 'quarantine'))).toHaveLength(4);
    } finally {
      await release();
    }
  });

  test('a metadata file that cannot be read (permission denied) is skipped and kept in place, not quarantined as bad JSON', async () => {
    const store = await backend.open();
    const locked = await store.enqueue(newMessage(['a@one.test']), chunked(Buffer.from('hello\r\n')));
    const other = await store.enqueue(newMessage(['b@two.test']), chunked(Buffer.from('hello\r\n')));
    await store.close();
    const lockedFile = path.join(backend.dir, 'meta', `${locked.id}.json`);
    // Root reads a mode-000 file anyway, so the denial is simulated where the store reads.
    const readFile = fs.readFile.bind(fs);
    const spy = jest.spyOn(fs, 'readFile').mockImplementation((async (file: unknown, ...rest: unknown[]) => {
      if (file === lockedFile) throw Object.assign(new Error(`EACCES: permission denied, open '${lockedFile}'`), { code: 'EACCES' });
      return (readFile as (...args: unknown[]) => Promise<unknown>)(file, ...rest);
    }) as unknown as typeof fs.readFile);
    const warnings: Array<Record<string, unknown>> = [];
    const logger = { ...silentLogger(), warn: (fields: Record<string, unknown>) => warnings.push(fields) } as unknown as ReturnType<typeof silentLogger>;
    const release = await acquireSpoolLock(backend.dir);
    try {
      const relay = new FileStore({ path: backend.dir, keepFinished: 86_400_000, logger });
      await relay.open();
      expect((await relay.listMessages()).map((m) => m.id)).toEqual([other.id]);
      expect((await relay.claimDue('w', 10, 60_000)).map((c) => c.message.id)).toEqual([other.id]);
      expect(await relay.listQuarantined()).toEqual([]);
      expect(await fs.readdir(path.join(backend.dir, 'quarantine'))).toEqual([]);
      await expect(fs.access(lockedFile)).resolves.toBeUndefined();
      expect(warnings.filter((w) => w.event === 'unreadable')).toEqual([expect.objectContaining({ queueId: locked.id, reason: 'metadata cannot be read (EACCES)' })]);
      spy.mockRestore();
      // Once it can be read again it is an ordinary message.
      expect((await relay.listMessages()).map((m) => m.id).sort()).toEqual([locked.id, other.id].sort());
      await relay.close();
    } finally {
      spy.mockRestore();
      await release();
    }
  });

  test('an admin process sharing the spool: its hold is kept and a held job is never claimed', async () => {
    const relay = await backend.open();
    const cli = await backend.open();
    const record = await relay.enqueue(newMessage(['a@one.test', 'b@one.test']), chunked(Buffer.from('x\r\n')));
    const other = await relay.enqueue(newMessage(['c@two.test']), chunked(Buffer.from('y\r\n')));
    await cli.hold(other.id);
    expect((await relay.claimDue('w1', 10, 60_000)).map((c) => c.message.id)).toEqual([record.id]);

    // Hold while the relay delivers; the relay's result is recorded and the hold stays.
    await cli.hold(record.id);
    const job = await relay.completeJob(record.jobs[0]!.id, 'w1', {
      recipients: [
        { address: 'a@one.test', outcome: 'delivered', evidence: evidence('delivered', 'delivered') },
        { address: 'b@one.test', outcome: 'deferred', evidence: evidence('deferred', 'rcpt-451') },
      ],
      retryAt: Date.now(),
    });
    expect(job.state).toBe('held');
    expect((await cli.getMessage(record.id))!.jobs[0]!.recipients.map((r) => r.state)).toEqual(['delivered', 'pending']);
    expect(await relay.claimDue('w1', 10, 60_000, Date.now() + 86_400_000)).toEqual([]);

    await cli.release(other.id);
    await cli.deleteMessage(record.id);
    // The relay learns of another process's changes from file-system events: allow them a moment to arrive.
    let claimed: Awaited<ReturnType<Store['claimDue']>> = [];
    for (let attempt = 0; attempt < 100 && claimed.length === 0; attempt++) {
      claimed = await relay.claimDue('w1', 10, 60_000, Date.now() + 86_400_000);
      if (claimed.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(claimed.map((c) => c.message.id)).toEqual([other.id]);
  });

  test('concurrent changes from two processes to one message are never lost', async () => {
    const relay = await backend.open();
    const cli = await backend.open();
    const records = [];
    for (let i = 0; i < 10; i++) records.push(await relay.enqueue(newMessage([`r${i}@one.test`]), chunked(Buffer.from(`m${i}\r\n`))));
    expect(await relay.claimDue('w1', 10, 60_000)).toHaveLength(10);
    await Promise.all(
      records.flatMap((record) => [
        relay.completeJob(record.jobs[0]!.id, 'w1', {
          recipients: [{ address: record.jobs[0]!.recipients[0]!.address, outcome: 'deferred', evidence: evidence('deferred', 'rcpt-451') }],
          retryAt: Date.now() + 60_000,
        }),
        cli.hold(record.id),
      ]),
    );
    for (const record of records) {
      const job = (await cli.getMessage(record.id))!.jobs[0]!;
      // Both the hold and the attempt's evidence are there, whichever came first.
      expect([job.state, job.attempts, job.recipients[0]!.history.length]).toEqual(['held', 1, 1]);
    }
  });

  test('the spool lock admits one relay and names the other PID', async () => {
    const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
    try {
      await new Promise((resolve) => sleeper.once('spawn', resolve));
      // The holder as a relay records itself: PID and process start time.
      await fs.writeFile(path.join(backend.dir, 'relay.pid'), formatOwner({ pid: sleeper.pid!, ...processStart(sleeper.pid!) }));
      await expect(acquireSpoolLock(backend.dir)).rejects.toThrow(`PID ${sleeper.pid}`);
    } finally {
      const exited = new Promise((resolve) => sleeper.once('exit', resolve));
      process.kill(sleeper.pid!, 'SIGKILL');
      await exited;
    }
    // The holder is gone: its lock is stale and taken over.
    const release = await acquireSpoolLock(backend.dir);
    expect(await fs.readFile(path.join(backend.dir, 'relay.pid'), 'utf8')).toBe(formatOwner(currentOwner()));
    await release();
    await expect(fs.access(path.join(backend.dir, 'relay.pid'))).rejects.toThrow();
  });
});
