import { mkdtempSync, promises as fs, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../../src/log/logger';
import { newMessageId } from '../../../src/store/ids';
import { BodySlabs, formatSlotRef, parseSlotRef, slotSizeFor, SLOT_SIZES } from '../../../src/store/lmdb/body-slabs';
import { LmdbStore } from '../../../src/store/lmdb/lmdb-store';
import type { LmdbSpool } from '../../../src/store/lmdb/spool';
import { CHANGE_POLL_MS } from '../../../src/store/lmdb/changes';
import { StoreError } from '../../../src/store/types';
import { seededRandom } from '../../support/crash-load';
import { chunked, evidence, newMessage, readAll } from '../contract';
import { bodyFile, flipFileByte, lmdbBackend, rawEnv, slotOf, spoolFilesContaining } from './harness';

/** The bodies are pseudo-random bytes from one seed, printed so a failure replays (BODY_SEED=<seed>). */
const SEED = process.env.BODY_SEED ? Number(process.env.BODY_SEED) : Math.floor(Math.random() * 2 ** 31);
process.stdout.write(`body-slabs test: random bodies from seed ${SEED}\n`);
const random = seededRandom(SEED);

function randomBody(size: number): Buffer {
  const body = Buffer.alloc(size);
  for (let i = 0; i < size; i++) body[i] = Math.floor(random() * 256);
  return body;
}

describe('slot references', () => {
  test('the smallest slot that holds a body; nothing for a body bigger than the largest', () => {
    expect(slotSizeFor(1)).toBe(8192);
    expect(slotSizeFor(8192)).toBe(8192);
    expect(slotSizeFor(8193)).toBe(16384);
    expect(slotSizeFor(256 * 1024)).toBe(256 * 1024);
    expect(slotSizeFor(256 * 1024 + 1)).toBeUndefined();
  });

  test('read back as written; anything else is no reference', () => {
    expect(parseSlotRef(formatSlotRef({ size: 16384, index: 7 }))).toEqual({ size: 16384, index: 7 });
    for (const text of [undefined, '', '16384', '16384:', '16384:-1', '1000:3', '16384:3:1', 'x:y']) expect(parseSlotRef(text)).toBeUndefined();
  });
});

describe('body slabs (files only)', () => {
  let dir: string;
  let slabs: BodySlabs;

  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-slabs-'));
    slabs = new BodySlabs(path.join(dir, 'slabs'));
  });

  afterEach(() => {
    slabs.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('only the allocator puts bodies into slots', async () => {
    await expect(slabs.put(Buffer.from('x'))).rejects.toThrow(/only the relay/);
  });

  test('a body goes into the lowest free slot of the smallest slab that holds it and reads back; a released slot is reused first', async () => {
    await slabs.startAllocating([]);
    const a = randomBody(5000);
    const b = randomBody(20_000);
    const c = randomBody(6000);
    const refA = await slabs.put(a);
    const refB = await slabs.put(b);
    const refC = await slabs.put(c);
    expect([refA, refB, refC]).toEqual([
      { size: 8192, index: 0 },
      { size: 32768, index: 0 },
      { size: 8192, index: 1 },
    ]);
    expect(slabs.read(refA, a.length)).toEqual(a);
    expect(slabs.read(refB, b.length)).toEqual(b);
    // A slab holds whole zeroed slots, ahead of use.
    expect((await fs.stat(slabs.file(8192))).size % 8192).toBe(0);
    slabs.zero(refA);
    expect(slabs.read(refA, 8192)).toEqual(Buffer.alloc(8192));
    slabs.release([refA]);
    expect(await slabs.put(randomBody(100))).toEqual({ size: 8192, index: 0 });
    expect(slabs.read(refC, c.length)).toEqual(c);
  });

  test('reading a slot past the end of its slab, or of a slab that does not exist, gives nothing', async () => {
    expect(slabs.read({ size: 8192, index: 0 }, 10)).toBeUndefined();
    await slabs.startAllocating([]);
    await slabs.put(randomBody(10));
    const slots = (await fs.stat(slabs.file(8192))).size / 8192;
    expect(slabs.read({ size: 8192, index: slots }, 10)).toBeUndefined();
  });

  test('at start, a slot no body maps to is zeroed when it is not zero; mapped slots are kept and never handed out', async () => {
    await slabs.startAllocating([]);
    const kept = randomBody(3000);
    const keptRef = await slabs.put(kept);
    const lostRef = await slabs.put(randomBody(3000));
    slabs.close();
    const again = new BodySlabs(slabs.dir);
    try {
      expect(await again.startAllocating([keptRef])).toBe(1);
      expect(again.read(lostRef, 8192)).toEqual(Buffer.alloc(8192));
      expect(again.read(keptRef, kept.length)).toEqual(kept);
      expect(await again.put(randomBody(10))).toEqual(lostRef);
      expect(await again.put(randomBody(10))).toEqual({ size: 8192, index: 2 });
    } finally {
      again.close();
    }
  });

  test('a slab whose last slots are all free is cut back to one growth step past its last used slot', async () => {
    await slabs.startAllocating([]);
    const size = SLOT_SIZES[SLOT_SIZES.length - 1]!;
    const step = (4 * 1024 * 1024) / size;
    const refs = [];
    for (let i = 0; i < 3 * step + 1; i++) refs.push(await slabs.put(randomBody(size - 1)));
    expect((await fs.stat(slabs.file(size))).size).toBe(4 * step * size);
    for (const ref of refs.slice(1)) slabs.zero(ref);
    slabs.release(refs.slice(1));
    expect((await fs.stat(slabs.file(size))).size).toBe((1 + step) * size);
    expect(slabs.freeSlots().get(size)).toEqual({ capacity: 1 + step, free: step });
    expect(await slabs.put(randomBody(size - 1))).toEqual({ size, index: 1 });
  });
});

describe('LMDB store as the relay: small bodies in slab slots', () => {
  let backend: ReturnType<typeof lmdbBackend>;

  beforeEach(() => {
    backend = lmdbBackend({ asRelay: true });
  });

  afterEach(async () => {
    await backend.dispose();
  });

  const spoolOf = (store: LmdbStore) => (store as unknown as { parts: { spool: LmdbSpool } }).parts.spool;
  const finish = async (store: LmdbStore, id: string) => {
    const claimed = (await store.claimDue('w', 10, 60_000)).find((c) => c.message.id === id)!;
    await store.completeJob(claimed.job.id, 'w', { recipients: [{ address: claimed.job.recipients[0]!.address, outcome: 'delivered', evidence: evidence('delivered', 'delivered') }] });
  };
  const holding = (marker: string) => spoolFilesContaining(backend.dir, marker);

  test('a body of up to 256 KiB is in a slot (no file of its own); a bigger one is a file; both read back', async () => {
    const store = await backend.openStore();
    const small = randomBody(10_240);
    const big = randomBody(256 * 1024 + 1);
    const a = await store.enqueue(newMessage(['a@one.test']), chunked(small));
    const b = await store.enqueue(newMessage(['b@one.test']), chunked(big));
    const slot = await slotOf(backend.dir, a.id);
    expect(slot?.size).toBe(16384);
    await expect(fs.access(bodyFile(backend.dir, a.id))).rejects.toThrow();
    expect(await slotOf(backend.dir, b.id)).toBeUndefined();
    expect(await fs.readFile(bodyFile(backend.dir, b.id))).toEqual(big);
    expect(await readAll(await store.openBody(a.id))).toEqual(small);
    expect(await readAll(await store.openBody(b.id))).toEqual(big);
  });

  test('a body removed by the retention sweep leaves none of its bytes in any file of the spool; its slot is reused', async () => {
    const store = await backend.openStore({ keepFinished: 86_400_000 });
    const marker = `canary-${SEED}-${newMessageId()}`;
    const record = await store.enqueue(newMessage(['a@one.test']), chunked(Buffer.from(`Subject: x\r\n\r\n${marker}\r\n`)));
    const slot = (await slotOf(backend.dir, record.id))!;
    // The positive control: before the sweep the grep finds the body, in its slab only.
    expect(await holding(marker)).toEqual([path.relative(backend.dir, slot.file)]);
    await finish(store, record.id);
    await store.sweep();
    expect((await store.getMessage(record.id))!.bodyRemoved).toBe(true);
    expect(await holding(marker)).toEqual([]);
    expect(await slotOf(backend.dir, record.id)).toBeUndefined();
    const next = await store.enqueue(newMessage(['b@one.test']), chunked(randomBody(100)));
    expect(await slotOf(backend.dir, next.id)).toEqual(slot);
  });

  test('an admin delete by another process zeroes the slot at once; the relay takes the slot back within a poll', async () => {
    const relay = await backend.openStore();
    const marker = `canary-${SEED}-${newMessageId()}`;
    const record = await relay.enqueue(newMessage(['a@one.test']), chunked(Buffer.from(`Subject: x\r\n\r\n${marker}\r\n`)));
    const slot = (await slotOf(backend.dir, record.id))!;
    // A second store in this process does not hand out slots: it stands in for an admin command.
    const admin = await backend.openStore();
    await admin.deleteMessage(record.id);
    expect(await holding(marker)).toEqual([]);
    const raw = rawEnv(backend.dir);
    try {
      expect([...raw.root.openDB<string, string>({ name: 'freedSlots', encoding: 'string' }).getKeys()]).toEqual([`${slot.size}:${slot.offset / slot.size}`]);
    } finally {
      await raw.close();
    }
    // Until the relay takes it back, the slot is not handed out again.
    const before = await relay.enqueue(newMessage(['b@one.test']), chunked(randomBody(100)));
    expect((await slotOf(backend.dir, before.id))!.offset).not.toBe(slot.offset);
    await new Promise((resolve) => setTimeout(resolve, CHANGE_POLL_MS + 50));
    await relay.claimDue('w', 1, 60_000);
    const after = await relay.enqueue(newMessage(['c@one.test']), chunked(randomBody(100)));
    expect(await slotOf(backend.dir, after.id)).toEqual(slot);
  });

  test('a reader whose record was read before the body was removed and its slot reused gets "not found", not a quarantine', async () => {
    const relay = await backend.openStore();
    const first = await relay.enqueue(newMessage(['a@one.test']), chunked(randomBody(3000)));
    const stale = (await relay.getMessage(first.id))!;
    const slot = await slotOf(backend.dir, first.id);
    const reader = await backend.openStore();
    await relay.deleteMessage(first.id);
    const second = randomBody(3000);
    const reused = await relay.enqueue(newMessage(['b@one.test']), chunked(second));
    expect(await slotOf(backend.dir, reused.id)).toEqual(slot);
    // The reader's view: the record as it was before the delete, the slot map as it is now.
    const readerSpool = spoolOf(reader);
    const raw = rawEnv(backend.dir);
    const slotText = raw.slots.get(reused.id)!;
    await raw.close();
    const readMessage = jest.spyOn(readerSpool, 'readMessage').mockResolvedValueOnce(stale);
    const slotsGet = jest.spyOn(readerSpool.env.slots, 'get').mockReturnValueOnce(slotText);
    const failure = await reader.openBody(first.id).catch((error: unknown) => error);
    readMessage.mockRestore();
    slotsGet.mockRestore();
    expect((failure as StoreError).code).toBe('not-found');
    expect(await relay.listQuarantined()).toEqual([]);
    expect(await readAll(await relay.openBody(reused.id))).toEqual(second);
  });

  test('a changed byte in a slot quarantines the message (body-checksum) with a copy of its body in kept/; the slot is zeroed and freed', async () => {
    const store = await backend.openStore();
    const body = randomBody(5000);
    const record = await store.enqueue(newMessage(['a@one.test']), chunked(body));
    const slot = (await slotOf(backend.dir, record.id))!;
    await flipFileByte(slot.file, slot.offset + 17);
    const failure = await store.openBody(record.id).catch((error: unknown) => error);
    expect((failure as StoreError).code).toBe('damaged');
    const [entry] = await store.listQuarantined();
    expect([entry!.id, entry!.code]).toEqual([record.id, 'body-checksum']);
    const damaged = Buffer.from(body);
    damaged[17] = damaged[17]! ^ 0xff;
    expect(await fs.readFile(path.join(backend.dir, 'lmdb-bodies', 'kept', `${entry!.at}-${record.id}`))).toEqual(damaged);
    expect(await slotOf(backend.dir, record.id)).toBeUndefined();
    const slab = await fs.readFile(slot.file);
    expect(slab.subarray(slot.offset, slot.offset + slot.size)).toEqual(Buffer.alloc(slot.size));
    const next = await store.enqueue(newMessage(['b@one.test']), chunked(randomBody(100)));
    expect(await slotOf(backend.dir, next.id)).toEqual(slot);
  });

  test('bytes a crash left in a slot no record maps to are zeroed when the relay opens the spool again', async () => {
    const logs: Array<Record<string, unknown>> = [];
    const logger = silentLogger();
    const store = await backend.openStore();
    const kept = randomBody(4000);
    const record = await store.enqueue(newMessage(['a@one.test']), chunked(kept));
    const slot = (await slotOf(backend.dir, record.id))!;
    await store.close();
    // A write cut short: body bytes in the next slot, with no record and no mapping.
    const handle = await fs.open(slot.file, 'r+');
    await handle.write(Buffer.from('left-behind body bytes'), 0, 22, slot.offset + slot.size);
    await handle.close();
    jest.spyOn(logger, 'warn').mockImplementation(((fields: Record<string, unknown>) => void logs.push(fields)) as never);
    const reopened = new LmdbStore({ path: backend.dir, keepFinished: 86_400_000, evidencePath: path.join(backend.dir, 'evidence'), logger });
    await reopened.open();
    try {
      expect(logs).toContainEqual(expect.objectContaining({ event: 'debris-removed', count: 1 }));
      expect(await holding('left-behind body bytes')).toEqual([]);
      expect(await readAll(await reopened.openBody(record.id))).toEqual(kept);
    } finally {
      await reopened.close();
    }
  });

  test('a record commit that fails frees the slot it was written into, zeroed', async () => {
    const store = await backend.openStore();
    const marker = `canary-${SEED}-${newMessageId()}`;
    const spool = spoolOf(store);
    const write = jest.spyOn(spool.env, 'write').mockRejectedValueOnce(new Error('disk full'));
    await expect(store.enqueue(newMessage(['a@one.test']), chunked(Buffer.from(marker)))).rejects.toThrow('disk full');
    write.mockRestore();
    expect(await holding(marker)).toEqual([]);
    const next = await store.enqueue(newMessage(['b@one.test']), chunked(randomBody(100)));
    expect((await slotOf(backend.dir, next.id))!.offset).toBe(0);
  });
});
