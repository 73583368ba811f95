import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LmdbSpool } from '../../../bench/store-designs/lmdb-spool';
import { bodyStream, deliveredResult, messageBody, newMessage, outcomeRecords } from '../../../bench/store-designs/workload';
import { evidenceRecordHash } from '../../../src/store/evidence-chain';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'lmdb-spool-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe.each([true, false])('LmdbSpool (overlappingSync %s)', (overlappingSync) => {
  it('keeps an accepted message, its result and its chained evidence across a reopen', async () => {
    const body = messageBody(300_000, 5);
    const spool = await LmdbSpool.open({ path: path.join(dir, 'lmdb'), overlappingSync });
    const { message, headers } = newMessage(5);
    const record = await spool.enqueue(message, bodyStream(body), headers);
    const second = await spool.enqueue(newMessage(6).message, bodyStream(messageBody(100, 6)), newMessage(6).headers);
    const claimed = (await spool.claimOne('w'))!;
    expect(claimed.message.id).toBe(record.id);
    const result = deliveredResult(claimed);
    await spool.appendEvidence(outcomeRecords(claimed, result));
    await spool.appendEvidence(outcomeRecords(claimed, result));
    await spool.completeJob(claimed.job.id, 'w', result);
    await spool.close();

    const reopened = await LmdbSpool.open({ path: path.join(dir, 'lmdb'), overlappingSync });
    expect(reopened.getMessage(record.id)!.jobs[0]!.state).toBe('delivered');
    expect(Buffer.concat(await (await reopened.openBody(record.id)).toArray())).toEqual(body);
    const evidence = reopened.evidenceRecords();
    expect(evidence.map((e) => e.seq)).toEqual([1, 2]);
    expect(evidence[1]!.prevHash).toBe(evidence[0]!.hash);
    expect(evidence.every((e) => evidenceRecordHash(e) === e.hash)).toBe(true);
    expect(reopened.waiting).toBe(1);
    expect((await reopened.claimOne('w2'))!.message.id).toBe(second.id);
    // The next append continues the chain read back at open.
    const [third] = await reopened.appendEvidence(outcomeRecords(claimed, result));
    expect(third!.prevHash).toBe(evidence[1]!.hash);
    await reopened.close();
  });
});
