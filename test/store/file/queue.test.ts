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

  test('an attempt reads the message metadata twice (claim, result), not again to open the body', async () => {
    const body = Buffer.from('Subject: x\r\n\r\nhello\r\n');
    const record = await store.enqueue(newMessage(['a@one.test']), chunked(body));
    const metaFile = path.join(dir, 'meta', `${record.id}.json`);
    const readFile = jest.spyOn(fs, 'readFile');
    const metaReads = () => readFile.mock.calls.filter(([file]) => file === metaFile).length;

    const [claimed] = await store.claimDue('w', 1, 60_000);
    expect(metaReads()).toBe(1);
    expect((await readAll(await store.openBody(record.id))).equals(body)).toBe(true);
    expect(metaReads()).toBe(1);
    await store.completeJob(claimed!.job.id, 'w', { recipients: [{ address: 'a@one.test', outcome: 'delivered', evidence: evidence('delivered', 'delivered') }] });
    expect(metaReads()).toBe(2);
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
