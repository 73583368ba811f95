import { mkdtempSync, rmSync } from 'node:fs';
import { appendFile, readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { drainBody } from '../../../bench/store-designs/driver';
import { GroupCommit } from '../../../bench/store-designs/group-commit';
import { decodeFrames, encodeFrame, JournalSpool } from '../../../bench/store-designs/journal-spool';
import { bodyStream, deliveredResult, messageBody, newMessage, outcomeRecords } from '../../../bench/store-designs/workload';
import { EVIDENCE_GENESIS } from '../../../src/store/evidence-chain';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'journal-spool-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('journal frames', () => {
  it('decode what encode wrote, and stop at a torn or damaged frame', () => {
    const raw = Buffer.from('body bytes\r\n');
    const frames = Buffer.concat([...encodeFrame('B', { id: 'a', n: 0 }, raw), ...encodeFrame('M', { id: 'a' })]);
    const whole = decodeFrames(frames);
    expect(whole.frames.map((f) => [f.kind, f.json])).toEqual([
      ['B', { id: 'a', n: 0 }],
      ['M', { id: 'a' }],
    ]);
    expect(frames.subarray(whole.frames[0]!.rawAt, whole.frames[0]!.rawAt + whole.frames[0]!.rawLength)).toEqual(raw);
    expect(whole.end).toBe(frames.length);

    const torn = decodeFrames(frames.subarray(0, frames.length - 3));
    expect(torn.frames).toHaveLength(1);
    const damaged = Buffer.from(frames);
    const at = whole.frames[0]!.rawAt;
    damaged.writeUInt8(damaged.readUInt8(at) ^ 0xff, at);
    expect(decodeFrames(damaged).frames).toHaveLength(0);
  });
});

describe('GroupCommit', () => {
  it('syncs once for the appends that arrive together and resolves each only after a sync covering it', async () => {
    const events: string[] = [];
    let releaseSync: () => void = () => undefined;
    const handle = {
      writev: async (buffers: Buffer[]) => {
        events.push(`write ${buffers.map((b) => b.toString()).join('')}`);
        return { bytesWritten: buffers.reduce((n, b) => n + b.length, 0), buffers };
      },
      datasync: () =>
        new Promise<void>((resolve) => {
          events.push('sync');
          releaseSync = resolve;
        }),
    };
    const commit = new GroupCommit(handle, 10);
    const a = commit.append([Buffer.from('a')], true);
    const b = commit.append([Buffer.from('b')], true);
    expect([a.at, b.at]).toEqual([10, 11]);
    let settled = 0;
    void a.done.then(() => settled++);
    await new Promise((resolve) => setImmediate(resolve));
    // Arrives while the first sync runs: waits for the next one.
    const c = commit.append([Buffer.from('c')], true);
    void c.done.then(() => settled++);
    expect(events).toEqual(['write ab', 'sync']);
    expect(settled).toBe(0);
    releaseSync();
    await b.done;
    expect(settled).toBe(1);
    await new Promise((resolve) => setImmediate(resolve));
    expect(events).toEqual(['write ab', 'sync', 'write c', 'sync']);
    releaseSync();
    await c.done;
    expect(commit.syncs).toBe(2);
  });

  it('rejects the batch and everything after a failed sync', async () => {
    const commit = new GroupCommit({ writev: async (buffers: Buffer[]) => ({ bytesWritten: buffers[0]!.length, buffers }), datasync: async () => Promise.reject(new Error('EIO')) }, 0);
    await expect(commit.append([Buffer.from('x')], true).done).rejects.toThrow('EIO');
    await expect(commit.append([Buffer.from('y')], true).done).rejects.toThrow('EIO');
  });
});

describe('JournalSpool', () => {
  it('keeps an accepted message, its result and its evidence across a reopen, and cuts a torn tail', async () => {
    const body = messageBody(200_000, 3);
    const journalDir = path.join(dir, 'journal');
    const spool = await JournalSpool.open(journalDir);
    const { message, headers } = newMessage(3);
    const record = await spool.enqueue(message, bodyStream(body), headers);
    const second = await spool.enqueue(newMessage(4).message, bodyStream(messageBody(100, 4)), newMessage(4).headers);
    const claimed = (await spool.claimOne('w'))!;
    expect(claimed.message.id).toBe(record.id);
    const result = deliveredResult(claimed);
    const [evidence] = await spool.appendEvidence(outcomeRecords(claimed, result));
    await spool.completeJob(claimed.job.id, 'w', result);
    expect(spool.syncs()).toBeGreaterThanOrEqual(3);
    await spool.close();
    const file = path.join(journalDir, 'segment-000001.log');
    const size = (await stat(file)).size;
    // A batch that was written but whose sync never returned: half a frame at the end.
    await appendFile(file, encodeFrame('M', { id: 'torn' })[0]!.subarray(0, 5));

    const reopened = await JournalSpool.open(journalDir);
    expect((await stat(file)).size).toBe(size);
    expect(reopened.getMessage(record.id)!.jobs[0]!.state).toBe('delivered');
    expect(reopened.getMessage(record.id)!.sha256).toBe(record.sha256);
    expect(await drainBody(await reopened.openBody(record.id))).toBe(body.length);
    expect(Buffer.concat(await (await reopened.openBody(record.id)).toArray())).toEqual(body);
    expect(reopened.evidenceHead).toEqual({ seq: 1, hash: evidence!.hash });
    expect(evidence!.prevHash).toBe(EVIDENCE_GENESIS);
    // The undelivered message is due again after the reopen.
    expect(reopened.waiting).toBe(1);
    expect((await reopened.claimOne('w2'))!.message.id).toBe(second.id);
    await reopened.close();
    expect((await readFile(file)).length).toBe(size);
  });
});
