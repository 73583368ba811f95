import { mkdtempSync, promises as fs, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { silentLogger } from '../../../src/log/logger';
import { FileStore } from '../../../src/store/file/file-store';
import { LmdbStore } from '../../../src/store/lmdb/lmdb-store';
import { hasFileSpool, migrateFileSpool, type SpoolImporter } from '../../../src/store/lmdb/migrate-file-spool';
import type { FallbackItem, MessageRecord } from '../../../src/store/types';
import { chunked, evidence, newMessage, readAll } from '../contract';

interface Imported {
  record: MessageRecord;
  body: Buffer | undefined;
  fallback: FallbackItem[];
  inflight: string[];
}

/**
 * Keeps what it is given, as the lmdb store would. `failAfter` makes the import of that message throw once it has
 * stored it, as a kill between the import and the removal of the file copy would.
 */
function recordingImporter(failAfter?: string): SpoolImporter & { stored: Map<string, Imported> } {
  const stored = new Map<string, Imported>();
  return {
    stored,
    async importMessage(record, body: Readable | undefined, fallback, inflightJobs) {
      if (stored.has(record.id)) return 'present';
      stored.set(record.id, { record, body: body && (await readAll(body)), fallback: [...fallback], inflight: [...inflightJobs] });
      if (record.id === failAfter) throw new Error('killed before the file copy was removed');
      return 'imported';
    },
  };
}

describe('moving a file spool into another store', () => {
  let dir: string;
  const options = () => ({ path: dir, keepFinished: 7 * 86_400_000, logger: silentLogger() });

  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-migrate-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** A spool with a waiting message, one diverted to the portal (fallback item) and one in flight. */
  async function fileSpool(): Promise<{ waiting: MessageRecord; diverted: MessageRecord; flying: MessageRecord; bodies: Map<string, Buffer> }> {
    const store = new FileStore(options());
    await store.open();
    const bodies = new Map<string, Buffer>();
    const put = async (to: string[], text: string) => {
      const body = Buffer.from(`Subject: x\r\n\r\n${text}\r\n`);
      const record = await store.enqueue(newMessage(to), chunked(body, 7));
      bodies.set(record.id, body);
      return record;
    };
    const waiting = await put(['a@one.test', 'b@two.test'], 'waits');
    const diverted = await put(['weak@three.test'], 'goes to the portal');
    const flying = await put(['c@four.test'], 'being delivered');
    const claimed = await store.claimDue('w1', 10, 60_000);
    const divertJob = claimed.find((c) => c.message.id === diverted.id)!.job.id;
    await store.completeJob(divertJob, 'w1', {
      recipients: [{ address: 'weak@three.test', outcome: 'diverted', evidence: evidence('diverted', 'tls-below-profile'), divertReason: 'no compliant MX' }],
    });
    for (const c of claimed) if (c.message.id === waiting.id) await store.releaseLease(c.job.id, 'w1');
    await store.close(); // the flying message's lease dies with the process; its in-flight marker stays
    return { waiting: (await reopen(waiting.id))!, diverted: (await reopen(diverted.id))!, flying: (await reopen(flying.id))!, bodies };
  }

  async function reopen(id: string): Promise<MessageRecord | undefined> {
    const store = new FileStore(options());
    await store.open();
    try {
      return await store.getMessage(id);
    } finally {
      await store.close();
    }
  }

  test('moves records, bodies, fallback items and in-flight jobs, then leaves no message in the file spool', async () => {
    const { waiting, diverted, flying, bodies } = await fileSpool();
    const importer = recordingImporter();
    expect(await hasFileSpool(dir)).toBe(true);

    const result = await migrateFileSpool(options(), importer);

    expect(result).toEqual({ imported: 3, alreadyPresent: 0, fallbackItems: 1 });
    for (const record of [waiting, diverted, flying]) {
      const moved = importer.stored.get(record.id)!;
      expect(moved.record).toEqual(record);
      expect(moved.body?.equals(bodies.get(record.id)!)).toBe(true);
    }
    expect(importer.stored.get(diverted.id)!.fallback.map((f) => [f.recipient, f.state])).toEqual([['weak@three.test', 'ready']]);
    expect(importer.stored.get(flying.id)!.inflight).toEqual([flying.jobs[0]!.id]);
    expect(importer.stored.get(waiting.id)!.inflight).toEqual([]);
    expect(await hasFileSpool(dir)).toBe(false);
    expect(await fs.readdir(path.join(dir, 'bodies'))).toEqual([]);
    expect(await fs.readdir(path.join(dir, 'fallback'))).toEqual([]);
    await expect(fs.access(path.join(dir, 'inflight'))).rejects.toThrow();
  });

  test('a migration cut off part-way loses nothing and the next run finishes it', async () => {
    const { waiting, diverted, flying } = await fileSpool();
    const importer = recordingImporter(diverted.id);
    await expect(migrateFileSpool(options(), importer)).rejects.toThrow('killed');
    // The message stored when the kill came and every one not reached yet are still in the file spool.
    const left = [waiting, diverted, flying].filter((r) => r.id === diverted.id || !importer.stored.has(r.id));
    expect(left.length).toBeGreaterThan(0);
    for (const record of left) expect(await reopen(record.id)).toEqual(record);

    const result = await migrateFileSpool(options(), importer);
    // The diverted message (the only one with a fallback item) was already stored: it only loses its file copy.
    expect(result).toEqual({ imported: left.length - 1, alreadyPresent: 1, fallbackItems: 0 });
    expect([...importer.stored.keys()].sort()).toEqual([waiting.id, diverted.id, flying.id].sort());
    expect(await hasFileSpool(dir)).toBe(false);
  });

  test('a finished message without a body moves as a record only', async () => {
    const store = new FileStore({ ...options(), keepFinished: 7 * 86_400_000 });
    await store.open();
    const record = await store.enqueue(newMessage(['a@one.test']), chunked(Buffer.from('x\r\n')));
    const [claimed] = await store.claimDue('w1', 1, 60_000);
    await store.completeJob(claimed!.job.id, 'w1', { recipients: [{ address: 'a@one.test', outcome: 'delivered', evidence: evidence('delivered', 'delivered') }] });
    await store.sweep(); // drops the body of a finished message, keeps the record
    await store.close();
    const importer = recordingImporter();
    await migrateFileSpool(options(), importer);
    expect(importer.stored.get(record.id)!.body).toBeUndefined();
    expect(importer.stored.get(record.id)!.record.jobs[0]!.state).toBe('delivered');
  });

  test('a folder without a file spool is left alone', async () => {
    const importer = recordingImporter();
    expect(await migrateFileSpool(options(), importer)).toEqual({ imported: 0, alreadyPresent: 0, fallbackItems: 0 });
    expect(await fs.readdir(dir)).toEqual([]);
  });
});

describe('the lmdb store opened on a folder that holds a file spool', () => {
  let dir: string;
  const options = () => ({ path: dir, keepFinished: 7 * 86_400_000, logger: silentLogger() });

  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-migrate-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('takes its messages over: waiting jobs are claimable, a job left in flight is flagged resumed, fallback items and bodies move too', async () => {
    const files = new FileStore(options());
    await files.open();
    const waitingBody = Buffer.concat([Buffer.from('Subject: x\r\n\r\n'), Buffer.alloc(600 * 1024, 0x61)]);
    const waiting = await files.enqueue(newMessage(['a@one.test']), chunked(waitingBody));
    const diverted = await files.enqueue(newMessage(['weak@two.test']), chunked(Buffer.from('to the portal\r\n')));
    const flying = await files.enqueue(newMessage(['c@three.test']), chunked(Buffer.from('being delivered\r\n')));
    const claimed = await files.claimDue('w1', 10, 60_000);
    await files.completeJob(claimed.find((c) => c.message.id === diverted.id)!.job.id, 'w1', {
      recipients: [{ address: 'weak@two.test', outcome: 'diverted', evidence: evidence('diverted', 'tls-below-profile'), divertReason: 'no compliant MX' }],
    });
    await files.releaseLease(claimed.find((c) => c.message.id === waiting.id)!.job.id, 'w1');
    await files.close();

    const store = new LmdbStore(options());
    await store.open();
    try {
      expect(await hasFileSpool(dir)).toBe(false);
      expect((await readAll(await store.openBody(waiting.id))).equals(waitingBody)).toBe(true);
      expect((await store.listFallback()).map((f) => [f.recipient, f.state])).toEqual([['weak@two.test', 'ready']]);
      const again = await store.claimDue('w2', 10, 60_000);
      expect(again.map((c) => [c.message.id, c.resumed === true]).sort()).toEqual(
        [
          [waiting.id, false],
          [flying.id, true],
        ].sort(),
      );
      expect((await store.getMessage(diverted.id))!.jobs[0]!.state).toBe('diverted');
    } finally {
      await store.close();
    }
    // A second open finds nothing left to move and the same messages.
    const reopened = new LmdbStore(options());
    await reopened.open();
    try {
      expect((await reopened.listMessages()).map((m) => m.id).sort()).toEqual([waiting.id, diverted.id, flying.id].sort());
    } finally {
      await reopened.close();
    }
  });
});
