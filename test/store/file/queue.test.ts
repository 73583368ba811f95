import { mkdtempSync, promises as fs, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../../src/log/logger';
import { FileStore } from '../../../src/store/file/file-store';
import { NotFoundError } from '../../../src/store/types';
import { chunked, evidence, newMessage, readAll } from '../contract';

/** The file store's delivery path: what it reads from disk per attempt. */
describe('file store job queue', () => {
  let dir: string;
  let store: FileStore;

  beforeEach(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-queue-'));
    store = new FileStore({ path: dir, keepFinished: 60_000, logger: silentLogger() });
    await store.open();
  });

  afterEach(async () => {
    jest.restoreAllMocks();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('an attempt reads no metadata file this process wrote and nobody changed since (claim, body, result)', async () => {
    const body = Buffer.from('Subject: x\r\n\r\nhello\r\n');
    const record = await store.enqueue(newMessage(['a@one.test']), chunked(body));
    const metaFile = path.join(dir, 'meta', `${record.id}.json`);
    const readFile = jest.spyOn(fs, 'readFile');
    const open = jest.spyOn(fs, 'open');
    const metaReads = () => [...readFile.mock.calls, ...open.mock.calls].filter(([file]) => file === metaFile).length;

    const [claimed] = await store.claimDue('w', 1, 60_000);
    expect(claimed!.message.id).toBe(record.id);
    expect((await readAll(await store.openBody(record.id))).equals(body)).toBe(true);
    const done = await store.completeJob(claimed!.job.id, 'w', { recipients: [{ address: 'a@one.test', outcome: 'delivered', evidence: evidence('delivered', 'delivered') }] });
    expect(done.state).toBe('delivered');
    expect(metaReads()).toBe(0);
    // What was used is what is on disk.
    expect(JSON.parse(await fs.readFile(metaFile, 'utf8'))).toEqual(await store.getMessage(record.id));
  });

  test('metadata another process rewrote during an attempt is read from disk: its hold survives the result', async () => {
    const record = await store.enqueue(newMessage(['a@one.test']), chunked(Buffer.from('x\r\n')));
    const [claimed] = await store.claimDue('w', 1, 60_000);
    // The admin CLI: another store on the same spool (its own memory), holding the message mid-attempt.
    const cli = new FileStore({ path: dir, keepFinished: 60_000, logger: silentLogger() });
    await cli.open();
    try {
      await cli.hold(record.id);
    } finally {
      await cli.close();
    }
    const readFile = jest.spyOn(fs, 'readFile');
    const metaFile = path.join(dir, 'meta', `${record.id}.json`);
    await store.completeJob(claimed!.job.id, 'w', { recipients: [{ address: 'a@one.test', outcome: 'deferred', evidence: evidence('deferred', 'try later') }], retryAt: Date.now() + 60_000 });
    expect(readFile.mock.calls.filter(([file]) => file === metaFile)).toHaveLength(1);
    const stored = JSON.parse(await fs.readFile(metaFile, 'utf8')) as { jobs: Array<{ state: string }> };
    expect(stored.jobs.map((j) => j.state)).toEqual(['held']);
  });

  test('a metadata file changed in place by hand (same inode, new size) is read from disk', async () => {
    const record = await store.enqueue(newMessage(['a@one.test']), chunked(Buffer.from('x\r\n')));
    const metaFile = path.join(dir, 'meta', `${record.id}.json`);
    const text = await fs.readFile(metaFile, 'utf8');
    await fs.writeFile(metaFile, JSON.stringify({ ...JSON.parse(text), note: 'edited by hand' }));
    expect(await store.getMessage(record.id)).toMatchObject({ note: 'edited by hand' });
  });

  test('a body removed after the claim is still reported from the metadata (removed, or gone with its message)', async () => {
    const kept = await store.enqueue(newMessage(['a@one.test']), chunked(Buffer.from('x\r\n')));
    const deleted = await store.enqueue(newMessage(['b@two.test']), chunked(Buffer.from('y\r\n')));
    expect(await store.claimDue('w', 10, 60_000)).toHaveLength(2);
    // As the sweep leaves a finished message whose fallback copy is still wanted: body first, then the flag.
    await fs.rm(path.join(dir, 'bodies', kept.id));
    const metaFile = path.join(dir, 'meta', `${kept.id}.json`);
    await fs.writeFile(metaFile, JSON.stringify({ ...JSON.parse(await fs.readFile(metaFile, 'utf8')), bodyRemoved: true }));
    await expect(store.openBody(kept.id)).rejects.toThrow(/no body any more/);
    await store.deleteMessage(deleted.id);
    const failure = await store.openBody(deleted.id).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(NotFoundError);
    expect((failure as Error).message).toMatch(/not found/);
  });
});
