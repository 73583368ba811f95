import { mkdtempSync, promises as fs, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../../src/log/logger';
import { FileStore } from '../../../src/store/file/file-store';
import { chunked, evidence, newMessage } from '../contract';

/**
 * In-flight markers of the file store: a relay that dies mid-attempt leaves one per job it was delivering, and
 * the next relay flags those jobs `resumed` when it claims them (the scheduler then logs possible-duplicate).
 */
describe('file store in-flight markers', () => {
  let dir: string;
  const opened: FileStore[] = [];

  async function open(): Promise<FileStore> {
    const store = new FileStore({ path: dir, keepFinished: 60_000, logger: silentLogger() });
    await store.open();
    opened.push(store);
    return store;
  }

  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-inflight-'));
  });

  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a job claimed by a relay that died is resumed by the next one; a job that only waited is not', async () => {
    const first = await open();
    const started = await first.enqueue(newMessage(['a@one.test']), chunked(Buffer.from('x\r\n')));
    const [claimed] = await first.claimDue('relay-1', 1, 60_000);
    expect(claimed!.message.id).toBe(started.id);
    const waiting = await first.enqueue(newMessage(['b@two.test']), chunked(Buffer.from('y\r\n')));
    // "SIGKILL": the first relay never records a result nor hands its lease back.
    expect(await fs.readdir(path.join(dir, 'inflight'))).toHaveLength(1);

    const second = await open();
    const again = await second.claimDue('relay-2', 10, 60_000);
    const byMessage = Object.fromEntries(again.map((c) => [c.message.id, c.resumed === true]));
    expect(byMessage).toEqual({ [started.id]: true, [waiting.id]: false });
  });

  test('a recorded result or a handed-back lease clears the marker: nothing is resumed after a restart', async () => {
    const first = await open();
    const deferred = await first.enqueue(newMessage(['a@one.test']), chunked(Buffer.from('x\r\n')));
    const handedBack = await first.enqueue(newMessage(['b@two.test']), chunked(Buffer.from('y\r\n')));
    const claimed = await first.claimDue('relay-1', 10, 60_000);
    expect(claimed).toHaveLength(2);
    await first.completeJob(deferred.jobs[0]!.id, 'relay-1', {
      recipients: [{ address: 'a@one.test', outcome: 'deferred', evidence: evidence('deferred', 'rcpt-451') }],
      retryAt: Date.now(),
    });
    await first.releaseLease(handedBack.jobs[0]!.id, 'relay-1');
    expect(await fs.readdir(path.join(dir, 'inflight'))).toEqual([]);

    const second = await open();
    const again = await second.claimDue('relay-2', 10, 60_000);
    expect(again).toHaveLength(2);
    expect(again.filter((c) => c.resumed)).toEqual([]);
  });

  test('markers of jobs that are no longer waiting are removed at the first claim', async () => {
    const first = await open();
    const gone = await first.enqueue(newMessage(['a@one.test']), chunked(Buffer.from('x\r\n')));
    await first.claimDue('relay-1', 10, 60_000);
    // The admin deleted the message after the relay died; its marker can never be resumed.
    const admin = await open();
    await admin.deleteMessage(gone.id);

    const second = await open();
    expect(await second.claimDue('relay-2', 10, 60_000)).toEqual([]);
    expect(await fs.readdir(path.join(dir, 'inflight'))).toEqual([]);
  });

  test('only the process that claims reads markers: opening the store (an admin command) leaves them', async () => {
    const first = await open();
    await first.enqueue(newMessage(['a@one.test']), chunked(Buffer.from('x\r\n')));
    await first.claimDue('relay-1', 10, 60_000);
    const admin = await open();
    await admin.listMessages();
    expect(await fs.readdir(path.join(dir, 'inflight'))).toHaveLength(1);
  });
});
